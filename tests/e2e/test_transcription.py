"""transcription_start / transcription_stop and answer's transcription: call.transcription carries what the
scripted caller says (inbound) and what the app speaks (outbound), once it has been heard on the call."""

from __future__ import annotations

import httpx
import pytest

from tests.receivers import WebhookReceiver
from tests.servers import WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"
BOOKING = """\
at_end: stay
inbound:
  - silence: {ms: 300}
  - say: {text: "I would like to book a table for two"}
  - wait_for: {event: app_audio_end, silence_ms: 200, timeout_ms: 8000}
  - say: {text: "At eight please"}
"""


def transcripts(hooks: WebhookReceiver) -> list[tuple[str, str, bool]]:
    found = []
    for request in hooks.requests:
        if request.event_type == "call.transcription":
            data = request.json["data"]["payload"]["transcription_data"]
            found.append((data["transcription_track"], data["transcript"], data["is_final"]))
    return found


async def ring(client: httpx.AsyncClient, scenario: str) -> str:
    created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": scenario})
    return str(created.json()["data"]["call_control_id"])


async def test_the_callers_words_and_the_apps_speech_are_transcribed_in_the_order_they_are_heard(tmp_path):
    (tmp_path / "booking.yaml").write_text(BOOKING)
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=4)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await ring(c, str(tmp_path / "booking.yaml"))
                config = {"transcription_tracks": "both", "transcription_engine_config": {"interim_results": True}}
                body = {"transcription": True, "transcription_config": config, "stream_url": target.url}
                assert (await c.post(f"/v2/calls/{call_id}/actions/answer", json=body)).status_code == 200
                await hooks.wait_until(lambda: len(transcripts(hooks)) >= 2, seconds=15)
                speak = {"payload": "<speak>For what <emphasis>time</emphasis>?</speak>", "payload_type": "ssml",
                         "voice": "female"}  # fmt: skip
                assert (await c.post(f"/v2/calls/{call_id}/actions/speak", json=speak)).status_code == 200
                await hooks.wait_until(lambda: ("inbound", "At eight please", True) in transcripts(hooks), seconds=20)
                await c.post(f"/v2/calls/{call_id}/actions/hangup", json={})
    assert transcripts(hooks) == [
        ("inbound", "I would like to", False),  # half-way through: a partial result (interim_results)
        ("inbound", "I would like to book a table for two", True),
        ("outbound", "For what time?", True),
        ("inbound", "At", False),
        ("inbound", "At eight please", True),
    ]
    first = next(r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.transcription")
    assert first["call_control_id"] == call_id and first["transcription_data"]["confidence"] > 0.9
    kinds = [r.event_type for r in hooks.requests]
    assert kinds.index("call.speak.ended") < kinds.index("call.transcription", kinds.index("call.speak.started"))


@pytest.mark.parametrize("speed", [0, 4])
async def test_real_time_and_speed_0_transcribe_the_same_words_in_the_same_order(tmp_path, speed):
    (tmp_path / "booking.yaml").write_text(BOOKING)
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=speed)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await ring(c, str(tmp_path / "booking.yaml"))
                # A stream listens, so at --speed 0 media time races; the app never answers the caller.
                config = {"transcription_engine_config": {"interim_results": True}}
                body = {"transcription": True, "transcription_config": config, "stream_url": target.url}
                assert (await c.post(f"/v2/calls/{call_id}/actions/answer", json=body)).status_code == 200
                await hooks.wait_until(lambda: len(transcripts(hooks)) == 4, seconds=15)
                await c.post(f"/v2/calls/{call_id}/actions/hangup", json={})
    assert transcripts(hooks) == [
        ("inbound", "I would like to", False),
        ("inbound", "I would like to book a table for two", True),
        ("inbound", "At", False),
        ("inbound", "At eight please", True),
    ]


async def test_transcription_start_hears_only_what_is_said_after_it_and_stop_ends_it(tmp_path):
    (tmp_path / "two.yaml").write_text(
        "at_end: stay\ninbound:\n  - say: {text: Before}\n  - silence: {ms: 1500}\n  - say: {text: After it}\n"
        "  - silence: {ms: 500}\n  - say: {text: Not heard}\n"
    )
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=4)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await ring(c, str(tmp_path / "two.yaml"))
                actions = f"/v2/calls/{call_id}/actions"
                early = await c.post(f"{actions}/transcription_start", json={})
                assert early.status_code == 422 and early.json()["errors"][0]["code"] == "90034"
                # A stream listens, so the call's media advances tick by tick (the test watches its clock).
                assert (await c.post(f"{actions}/answer", json={"stream_url": target.url})).status_code == 200
                not_yet = await c.post(f"{actions}/transcription_stop", json={})
                assert not_yet.status_code == 422 and not_yet.json()["errors"][0]["title"] == "Not transcribing"
                bad = await c.post(f"{actions}/transcription_start", json={"transcription_tracks": "left"})
                assert bad.json()["errors"][0]["source"] == {"pointer": "/transcription_tracks"}
                # "Before" lasts well under the 1.5 s of silence after it: start transcribing in that silence.
                await target.wait_connection(0)
                runner = next(iter(emulator.state.runtime.runners.values()))
                await target.wait_for(lambda: runner.engine.index * 20 > 1000, seconds=5)
                started = await c.post(f"{actions}/transcription_start", json={"transcription_engine": "B"})
                assert started.json() == {"data": {"result": "ok"}}
                await hooks.wait_until(lambda: bool(transcripts(hooks)), seconds=10)
                assert (await c.post(f"{actions}/transcription_stop", json={})).status_code == 200
                await target.wait_for(lambda: runner.engine.script_end is not None, seconds=10)
                await c.post(f"{actions}/hangup", json={})
    assert transcripts(hooks) == [("inbound", "After it", True)]
