"""Which scenario a call plays (map by called number, per call, changed later) and its recordings."""

from __future__ import annotations

import io
import wave

import httpx
import numpy as np
import pytest

from tests.receivers import WebhookReceiver
from tests.servers import WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, SUPPORT, SALES = "+13125550111", "+13125550122", "+13125550133"


def scenarios(tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "short.yaml").write_text("inbound:\n  - tone: {frequency: 1000, ms: 100}\n")
    (folder / "busy.yaml").write_text("callee: {outcome: busy}\ninbound:\n  - silence: {ms: 100}\n")
    (folder / "long.yaml").write_text("inbound:\n  - tone: {frequency: 500, ms: 400}\n")
    (tmp_path / "map.yaml").write_text(f'"{SUPPORT}": short\n"{SALES}": busy\n')
    # The map lives outside the scenario folder: every YAML file in that folder is a scenario.
    return emulator_settings(scenario_dir=folder, scenario="long", scenario_map=tmp_path / "map.yaml")


def media_count(conn) -> int:
    return len(conn.of("media"))


async def test_the_called_number_picks_the_scenario_and_a_request_can_override_it(tmp_path):
    settings = scenarios(tmp_path)
    async with WsReceiver().running() as target, run_emulator(settings) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            mapped = (await client.post("/_emulator/calls", json={"from": CALLER, "to": SUPPORT})).json()["data"]
            chosen = {"from": CALLER, "to": SUPPORT, "scenario": "long"}
            explicit = (await client.post("/_emulator/calls", json=chosen)).json()["data"]
            unmapped = (await client.post("/_emulator/calls", json={"from": CALLER, "to": "+13125550199"})).json()
            assert (mapped["scenario"], explicit["scenario"], unmapped["data"]["scenario"]) == ("short", "long", None)
            for i, call in enumerate((mapped, explicit, unmapped["data"])):
                await client.post(
                    f"/v2/calls/{call['call_control_id']}/actions/answer", json={"stream_url": target.url}
                )
                await target.wait_closed(i)
            assert [media_count(c) for c in target.connections] == [5, 20, 20]

            bad = await client.post("/_emulator/calls", json={"from": CALLER, "to": SUPPORT, "scenario": "nope"})
            assert bad.status_code == 422 and bad.json()["errors"][0]["source"]["pointer"] == "/scenario"


async def test_a_scenario_file_named_like_a_folder_scenario_plays_only_where_it_is_asked_for(tmp_path):
    settings = scenarios(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "short.yaml").write_text("inbound:\n  - silence: {ms: 300}\n")
    path = str(tmp_path / "elsewhere" / "short.yaml")
    async with WsReceiver().running() as target, run_emulator(settings) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            chosen = []
            for i, scenario in enumerate(("short", path, "short")):
                body = {"from": CALLER, "to": "+13125550199", "scenario": scenario}
                call = (await client.post("/_emulator/calls", json=body)).json()["data"]
                chosen.append(call["scenario"])
                await client.post(
                    f"/v2/calls/{call['call_control_id']}/actions/answer", json={"stream_url": target.url}
                )
                await target.wait_closed(i)
            assert chosen == ["short", str((tmp_path / "elsewhere" / "short.yaml").resolve()), "short"]
            assert [media_count(c) for c in target.connections] == [5, 15, 5]


async def test_a_dialed_number_mapped_to_a_busy_callee_gets_user_busy(tmp_path):
    async with WebhookReceiver().running() as hooks:
        settings = scenarios(tmp_path).replace(webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            body = {"connection_id": "1", "from": CALLER, "to": SALES}
            assert (await c.post("/v2/calls", json=body)).status_code == 200
            await hooks.wait_until(lambda: any(r.event_type == "call.hangup" for r in hooks.requests))
            (hangup,) = [r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.hangup"]
            assert hangup["hangup_cause"] == "user_busy"


async def test_the_scenario_of_a_ringing_call_can_be_changed_before_it_streams(tmp_path):
    settings = scenarios(tmp_path)
    async with WsReceiver().running() as target, run_emulator(settings) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            call = (await client.post("/_emulator/calls", json={"from": CALLER, "to": SUPPORT})).json()["data"]
            call_id = call["call_control_id"]
            changed = await client.put(f"/_emulator/calls/{call_id}/scenario", json={"scenario": "long"})
            assert changed.json()["data"]["scenario"] == "long"
            await client.post(f"/v2/calls/{call_id}/actions/answer", json={"stream_url": target.url})
            assert media_count(await target.wait_closed()) == 20
            missing = await client.put("/_emulator/calls/v3:none/scenario", json={"scenario": "long"})
            assert missing.status_code == 404


async def test_recordings_are_served_as_wav_and_written_to_the_recordings_dir(tmp_path):
    settings = emulator_settings(scenario="tone", recordings_dir=tmp_path / "rec")
    async with WsReceiver().running() as target, run_emulator(settings) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            body = {"stream_url": target.url, "stream_track": "both_tracks"}
            await client.post("/v2/calls/v3:rec/actions/streaming_start", json=body)
            stream_id = (await target.wait_closed()).messages[1]["stream_id"]
            await emulator.state.runtime.wait_idle()
            response = await client.get(f"/_emulator/streams/{stream_id}/recording/inbound.wav")
            assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
            with wave.open(io.BytesIO(response.content)) as wav:
                assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
                samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
            assert len(samples) == 2 * 8000  # the 2 s tone scenario
            spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
            assert abs(np.argmax(spectrum) * 8000 / len(samples) - 1000) < 5
            assert (await client.get(f"/_emulator/streams/{stream_id}/recording/nope.wav")).status_code == 404
    names = sorted(p.name for p in (tmp_path / "rec").iterdir())
    assert names == [f"{stream_id}-{track}.wav" for track in ("app", "inbound", "outbound")]
