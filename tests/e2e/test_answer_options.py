"""What dial and answer ask for at the answer (record, audio_url, send_digits_on_answer, time_limit_secs,
timeout_secs), answering machine detection, and the payload fields real calls carry (call_quality_stats,
the SIP details of an incoming call.initiated)."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
import soundfile

from emulator.media import codecs
from tests.receivers import WebhookReceiver
from tests.servers import Connection, WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"
STAY = "at_end: stay\ninbound:\n  - silence: {ms: 100}\n"


def events(hooks: WebhookReceiver, event_type: str | None = None) -> list[dict]:
    return [r.json["data"] for r in hooks.requests if event_type is None or r.event_type == event_type]


def kinds(hooks: WebhookReceiver) -> list[str]:
    return [r.event_type for r in hooks.requests]


def dial(to: str = APP_NUMBER, **fields: object) -> dict:
    return {"connection_id": "1", "to": to, "from": CALLER, **fields}


def outbound_pcm(conn: Connection) -> np.ndarray:
    frames = [m for m in conn.of("media") if m["media"]["track"] == "outbound"]
    return codecs.decode_ulaw(b"".join(base64.b64decode(m["media"]["payload"]) for m in frames)).astype(np.float64)


def two_loudest(pcm: np.ndarray, rate: int = 8000) -> list[float]:
    spectrum = np.abs(np.fft.rfft(pcm))
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    return sorted(float(f) for f in freqs[np.argsort(spectrum)[-2:]])


async def test_dial_with_digits_in_to_sends_them_at_the_answer_and_time_limit_secs_ends_the_call(tmp_path):
    """+1...,9: the callee hears DTMF 9 once it answers; time_limit_secs later the call ends (time_limit). At
    --speed 0 the 30 s of media race through to the stream."""
    (tmp_path / "ivr.yaml").write_text("callee: {ring_ms: 100}\n" + STAY)
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        settings = emulator_settings(webhook_url=hooks.url, scenario_dir=tmp_path, scenario="ivr")
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            body = dial(f"{APP_NUMBER},9", stream_url=target.url, stream_track="both_tracks", time_limit_secs=30)
            created = await c.post("/v2/calls", json=body)
            assert created.status_code == 200 and "recording_id" not in created.json()["data"]
            await hooks.wait_until(lambda: "call.hangup" in kinds(hooks), seconds=20)
            conn = await target.wait_closed(0)
            (hangup,) = events(hooks, "call.hangup")
    payload = hangup["payload"]
    assert (payload["hangup_cause"], payload["hangup_source"]) == ("time_limit", "unknown")
    assert payload["to"] == APP_NUMBER  # the digits are not part of the number
    media_frames = len(conn.of("media")) // 2  # inbound and outbound
    assert abs(media_frames - 30 * 50) <= 2  # 30 s of 20 ms frames
    stats = payload["call_quality_stats"]
    assert stats["inbound"]["packet_count"] == str(30 * 50) and stats["inbound"]["mos"] == "4.50"
    assert stats["outbound"]["packet_count"] == str(30 * 50)
    heard = outbound_pcm(conn)[:8000]  # the first second: the digit
    low, high = two_loudest(heard)
    assert abs(low - 852) < 15 and abs(high - 1477) < 15  # DTMF 9


async def test_dial_record_from_answer_names_the_recording_in_its_answer_and_plays_audio_url(tmp_path):
    rate = 8000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(rate // 2) / rate) * 32767).astype(np.int16)
    (tmp_path / "tone.wav").write_bytes(_wav(tone, rate))
    (tmp_path / "callee.yaml").write_text("callee: {ring_ms: 100}\ninbound:\n  - silence: {ms: 1500}\n")
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(
            webhook_url=hooks.url, scenario_dir=tmp_path, scenario="callee", media_dir=tmp_path, speed=4
        )
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            body = dial(record="record-from-answer", record_format="wav", record_channels="dual", media_name="tone.wav")
            created = (await c.post("/v2/calls", json=body)).json()["data"]
            assert set(created) >= {"call_control_id", "recording_id"}
            await hooks.wait_until(lambda: "call.recording.saved" in kinds(hooks), seconds=15)
            (saved,) = events(hooks, "call.recording.saved")
            wav = await c.get(saved["payload"]["recording_urls"]["wav"])
            assert wav.status_code == 200
            ended = events(hooks, "call.playback.ended")
    assert [e["payload"]["status"] for e in ended] == ["completed"]
    assert ended[0]["payload"]["media_name"] == "tone.wav"
    audio, file_rate = soundfile.read(io.BytesIO(wav.content), dtype="int16")
    assert audio.shape[1] == 2 and file_rate == 8000
    played = audio[:, 1].astype(np.float64)  # the call's side: the file, from the answer
    frames = played[: len(played) // 160 * 160].reshape(-1, 160)
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 3000
    assert 23 <= int(loud.sum()) <= 27  # the half second of 1 kHz: 25 frames
    assert abs(two_loudest(played)[1] - 1000) < 15


def _wav(pcm: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, pcm, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


async def test_a_callee_slower_than_timeout_secs_ends_the_dial_with_timeout(tmp_path):
    (tmp_path / "slow.yaml").write_text("callee: {ring_ms: 9000}\n" + STAY)
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url, scenario_dir=tmp_path, scenario="slow")
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            assert (await c.post("/v2/calls", json=dial(timeout_secs=5))).status_code == 200
            await hooks.wait_until(lambda: "call.hangup" in kinds(hooks), seconds=10)
            (hangup,) = events(hooks, "call.hangup")
            assert (hangup["payload"]["hangup_cause"], hangup["payload"]["hangup_source"]) == ("timeout", "callee")
            assert hangup["payload"]["call_quality_stats"] is None  # never answered: no media
            assert kinds(hooks) == ["call.initiated", "call.hangup"]


@pytest.mark.parametrize(
    ("callee", "mode", "expected"),
    [
        (
            "{answered_by: machine, greeting_ms: 2000, beep: true}",
            "detect_beep",
            [("call.machine.detection.ended", "machine"), ("call.machine.greeting.ended", "beep_detected")],
        ),
        ("{answered_by: human}", "greeting_end", [("call.machine.detection.ended", "human")]),
        ("{answered_by: machine}", "detect", [("call.machine.detection.ended", "machine")]),
        ("{answered_by: silence}", "detect", [("call.machine.detection.ended", "not_sure")]),
        (
            "{answered_by: machine, greeting_ms: 2000, beep: true}",
            "premium",
            [
                ("call.machine.premium.detection.ended", "machine"),
                ("call.machine.premium.greeting.ended", "beep_detected"),
            ],
        ),
        ("{answered_by: human_business}", "premium", [("call.machine.premium.detection.ended", "human_business")]),
    ],
)
async def test_answering_machine_detection_reports_who_the_scenario_says_answers(tmp_path, callee, mode, expected):
    (tmp_path / "amd.yaml").write_text(
        f"callee: {callee}\ninbound:\n  - say: {{text: Hello}}\n  - silence: {{ms: 6000}}\n"
    )
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url, scenario_dir=tmp_path, scenario="amd", speed=8)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            body = dial(answering_machine_detection=mode, client_state="YW1k")
            assert (await c.post("/v2/calls", json=body)).status_code == 200
            await hooks.wait_until(lambda: "call.hangup" in kinds(hooks), seconds=15)
    got = [(r.event_type, r.json["data"]["payload"]["result"]) for r in hooks.requests if ".machine." in r.event_type]
    assert got == expected
    order = kinds(hooks)
    assert order.index("call.answered") < order.index(expected[0][0]) < order.index("call.hangup")
    first = next(r.json["data"]["payload"] for r in hooks.requests if r.event_type == expected[0][0])
    assert first["client_state"] == "YW1k" and first["to"] == APP_NUMBER


async def test_amd_is_not_run_when_disabled_and_a_bad_mode_points_at_the_field(tmp_path):
    async with (
        run_emulator(emulator_settings()) as emulator,
        httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c,
    ):
        bad = await c.post("/v2/calls", json=dial(answering_machine_detection="maybe"))
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["source"] == {"pointer": "/answering_machine_detection"}
        config = {"total_analysis_time_millis": "long"}
        bad = await c.post("/v2/calls", json=dial(answering_machine_detection_config=config))
        assert bad.json()["errors"][0]["source"] == {
            "pointer": "/answering_machine_detection_config/total_analysis_time_millis"
        }


async def test_an_incoming_call_initiated_carries_its_sip_details_and_codecs():
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                await c.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})
                await hooks.wait_until(lambda: "call.initiated" in kinds(hooks))
    (initiated,) = events(hooks, "call.initiated")
    payload = initiated["payload"]
    assert payload["calling_party_type"] == "pstn"
    assert payload["from_sip_uri"].startswith(f"{CALLER}@") and payload["to_sip_uri"].startswith(f"{APP_NUMBER}@")
    assert payload["offered_codecs"].split(",")[0] == "PCMU"  # the call's codec first
    assert "G722" in payload["connection_codecs"].split(",")
