"""speak, playback and send_dtmf end to end: what the app plays is heard on the outbound track, on time."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import numpy as np
import pytest
import soundfile
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from emulator.media import codecs
from tests.receivers import WebhookReceiver
from tests.servers import Connection, WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"


def event_types(hooks: WebhookReceiver) -> list[str]:
    return [r.event_type for r in hooks.requests]


def outbound_pcm(conn: Connection) -> np.ndarray:
    frames = [m for m in conn.of("media") if m["media"]["track"] == "outbound"]
    return codecs.decode_ulaw(b"".join(base64.b64decode(m["media"]["payload"]) for m in frames))


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


async def answered_call(client: httpx.AsyncClient, target: WsReceiver) -> str:
    created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": "stay-on-line"})
    call_id = created.json()["data"]["call_control_id"]
    body = {"stream_url": target.url, "stream_track": "both_tracks"}
    assert (await client.post(f"/v2/calls/{call_id}/actions/answer", json=body)).status_code == 200
    await target.wait_connection(0)
    return call_id


async def test_speak_is_heard_on_the_outbound_track_between_its_started_and_ended_webhooks():
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(emulator_settings(speed=4, webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                call_id = await answered_call(client, target)
                body = {"payload": "Hello, thanks for calling.", "voice": "female", "client_state": "aGk="}
                spoken = await client.post(f"/v2/calls/{call_id}/actions/speak", json=body)
                assert spoken.json() == {"data": {"result": "ok"}}
                await hooks.wait_until(lambda: "call.speak.ended" in event_types(hooks), seconds=15)
                ended = next(r.json["data"] for r in hooks.requests if r.event_type == "call.speak.ended")
                assert ended["payload"]["status"] == "completed" and ended["payload"]["client_state"] == "aGk="
                assert ended["payload"]["call_control_id"] == call_id
                kinds = event_types(hooks)
                assert kinds.index("call.speak.started") < kinds.index("call.speak.ended")
                await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})
                conn = await target.wait_closed(0)
    heard = outbound_pcm(conn)
    frames = heard[: len(heard) // 160 * 160].reshape(-1, 160)
    loud = [i for i, frame in enumerate(frames) if rms(frame) > 300]
    assert len(loud) > 25  # at least half a second of speech
    assert rms(frames[: max(loud[0] - 1, 1)]) < 50  # silence on the outbound track before the speech


async def test_send_dtmf_plays_the_digits_two_frequencies_to_the_caller():
    async with WsReceiver().running() as target, run_emulator(emulator_settings(speed=4)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            call_id = await answered_call(client, target)
            body = {"digits": "5", "duration_millis": 300}
            assert (await client.post(f"/v2/calls/{call_id}/actions/send_dtmf", json=body)).status_code == 200
            conn = target.connections[0]
            await target.wait_for(lambda: len(conn.of("media")) >= 2 * 40, seconds=10)
            await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})
            await target.wait_closed(0)
    heard = outbound_pcm(conn).astype(np.float64)
    loud = heard[np.abs(heard) > 500]
    assert len(loud) > 0.2 * 8000  # most of the 300 ms tone
    spectrum = np.abs(np.fft.rfft(heard))
    freqs = np.fft.rfftfreq(len(heard), 1 / 8000)
    peaks = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert abs(peaks[0] - 770) < 15 and abs(peaks[1] - 1336) < 15  # DTMF 5


async def test_speak_on_a_call_that_is_not_answered_is_90034_and_bad_bodies_point_at_the_field():
    async with run_emulator(emulator_settings()) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})
            call_id = created.json()["data"]["call_control_id"]
            early = await client.post(f"/v2/calls/{call_id}/actions/speak", json={"payload": "hi", "voice": "male"})
            assert early.status_code == 422 and early.json()["errors"][0]["code"] == "90034"
            missing = await client.post("/v2/calls/v3:made-up/actions/speak", json={"payload": "hi"})
            assert missing.status_code == 422
            assert missing.json()["errors"][0]["source"] == {"pointer": "/voice"}
            bad = await client.post("/v2/calls/v3:made-up/actions/send_dtmf", json={"digits": "12x"})
            assert bad.status_code == 422 and bad.json()["errors"][0]["source"] == {"pointer": "/digits"}


async def test_queued_speech_plays_in_order_and_a_hangup_ends_what_is_left_with_call_hangup():
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(emulator_settings(speed=4, webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                call_id = await answered_call(client, target)
                first = {"payload": "One.", "voice": "male"}
                second = {"payload": "This sentence is long enough to still be playing when the app hangs up.",
                          "voice": "AWS.Polly.Joanna", "language": "en-US"}  # fmt: skip
                for body in (first, second):
                    assert (await client.post(f"/v2/calls/{call_id}/actions/speak", json=body)).status_code == 200
                await hooks.wait_until(lambda: event_types(hooks).count("call.speak.started") == 2, seconds=15)
                await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})
                await hooks.wait_until(lambda: event_types(hooks).count("call.speak.ended") == 2)
    speak = [(r.event_type, r.json["data"]["payload"].get("status")) for r in hooks.requests if "speak" in r.event_type]
    assert speak == [
        ("call.speak.started", None),
        ("call.speak.ended", "completed"),
        ("call.speak.started", None),
        ("call.speak.ended", "call_hangup"),
    ]


@pytest.mark.parametrize("scenario", ["stay-on-line", "silence"])
async def test_speak_on_a_call_nobody_streams_starts_at_once(scenario):
    # The runner of a call without a stream sleeps through quiet ticks (or idles): a clip must wake it.
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(speed=4, webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                created = await client.post(
                    "/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": scenario}
                )
                call_id = created.json()["data"]["call_control_id"]
                await client.post(f"/v2/calls/{call_id}/actions/answer", json={})
                await client.post(f"/v2/calls/{call_id}/actions/send_dtmf", json={"digits": "1"})
                body = {"payload": "Still there?", "voice": "female"}
                assert (await client.post(f"/v2/calls/{call_id}/actions/speak", json=body)).status_code == 200
                await hooks.wait_until(lambda: "call.speak.ended" in event_types(hooks), seconds=3)
                assert emulator.state.runtime.failures == []


def tone_wav(frequency: float, seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    buffer = io.BytesIO()
    soundfile.write(buffer, pcm, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@asynccontextmanager
async def file_server(files: dict[str, bytes]) -> AsyncIterator[str]:
    """A real HTTP server for audio_url: serves ``files`` by path, 404 for anything else."""

    async def serve(request):
        body = files.get(request.url.path)
        return Response(body, media_type="audio/wav") if body is not None else Response(status_code=404)

    app = Starlette(routes=[Route("/{path:path}", serve)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(5):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


def dominant_frequency(pcm: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(pcm))


async def test_playback_of_an_audio_url_plays_its_1khz_tone_and_reports_it(tmp_path):
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with file_server({"/tone.wav": tone_wav(1000, 0.6)}) as files:
            async with run_emulator(emulator_settings(speed=4, webhook_url=hooks.url)) as emulator:
                async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                    call_id = await answered_call(client, target)
                    body = {"audio_url": f"{files}/tone.wav", "audio_type": "wav"}
                    assert (await client.post(f"/v2/calls/{call_id}/actions/playback_start", json=body)).is_success
                    await hooks.wait_until(lambda: "call.playback.ended" in event_types(hooks), seconds=10)
                    await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})
                    conn = await target.wait_closed(0)
    started, ended = (r.json["data"]["payload"] for r in hooks.requests if "playback" in r.event_type)
    assert started["media_url"] == f"{files}/tone.wav" and started["overlay"] is False and "status" not in started
    assert ended["status"] == "completed"
    heard = outbound_pcm(conn)
    frames = heard[: len(heard) // 160 * 160].reshape(-1, 160)
    assert 29 <= sum(rms(frame) > 2000 for frame in frames) <= 31  # 0.6 s: 30 frames of the tone
    assert abs(dominant_frequency(heard) - 1000) < 10


async def test_a_missing_file_ends_with_file_not_found_and_playback_stop_cancels_the_queue(tmp_path):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "hold.wav").write_bytes(tone_wav(440, 5))
    settings = emulator_settings(speed=4, media_dir=tmp_path / "media")
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with file_server({}) as files, run_emulator(settings.replace(webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                call_id = await answered_call(client, target)
                actions = f"/v2/calls/{call_id}/actions"
                await client.post(f"{actions}/playback_start", json={"audio_url": f"{files}/nope.mp3"})
                await client.post(f"{actions}/playback_start", json={"media_name": "hold.wav", "loop": "infinity"})
                await client.post(f"{actions}/playback_start", json={"media_name": "hold.wav"})
                await hooks.wait_until(lambda: "call.playback.started" in event_types(hooks), seconds=10)
                assert (await client.post(f"{actions}/playback_stop", json={})).is_success
                await hooks.wait_until(lambda: event_types(hooks).count("call.playback.ended") == 3)
                both = await client.post(f"{actions}/playback_start", json={"media_name": "a", "audio_url": files})
                assert both.status_code == 422 and both.json()["errors"][0]["source"] == {"pointer": "/media_name"}
                none = await client.post(f"{actions}/playback_start", json={"loop": 2})
                assert none.status_code == 422 and none.json()["errors"][0]["code"] == "10004"
    ended = [r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.playback.ended"]
    assert [(e.get("media_url", e.get("media_name")), e["status"]) for e in ended] == [
        (f"{files}/nope.mp3", "file_not_found"),
        ("hold.wav", "cancelled"),
        ("hold.wav", "cancelled"),
    ]
    assert "404" in ended[0]["status_detail"]


async def test_reject_ends_a_ringing_call_client_state_update_and_suppression_are_noted():
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                ringing = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})
                call_id = ringing.json()["data"]["call_control_id"]
                rejected = await client.post(f"/v2/calls/{call_id}/actions/reject", json={"cause": "USER_BUSY"})
                assert rejected.json() == {"data": {"result": "ok"}}
                await hooks.wait_until(lambda: "call.hangup" in event_types(hooks))
                hangup = next(r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.hangup")
                assert (hangup["hangup_cause"], hangup["hangup_source"]) == ("user_busy", "callee")
                assert "call.answered" not in event_types(hooks)

                created = await client.post(
                    "/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": "stay-on-line"}
                )
                other = created.json()["data"]["call_control_id"]
                actions = f"/v2/calls/{other}/actions"
                assert (await client.post(f"{actions}/suppression_start", json={})).status_code == 422  # 90034
                await client.post(f"{actions}/answer", json={})
                late = await client.post(f"{actions}/reject", json={"cause": "CALL_REJECTED"})
                assert late.status_code == 422 and "already answered" in late.json()["errors"][0]["detail"]
                await client.post(f"{actions}/suppression_start", json={"direction": "both"})
                assert (await client.get(f"/_emulator/calls/{other}")).json()["data"]["noise_suppression"] == "both"
                await client.put(f"{actions}/client_state_update", json={"client_state": "bmV3"})  # Telnyx: PUT
                await client.post(f"{actions}/hangup", json={})
                await hooks.wait_until(lambda: event_types(hooks).count("call.hangup") == 2)
                last = [r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.hangup"][-1]
                assert last["client_state"] == "bmV3"


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
async def test_a_dual_channel_recording_is_served_with_the_caller_left_and_the_calls_audio_right(fmt):
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(emulator_settings(speed=4, webhook_url=hooks.url, api_keys={"test-key"})) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                call_id = await answered_call(client, target)
                actions = f"/v2/calls/{call_id}/actions"
                body = {"format": fmt, "channels": "dual", "play_beep": False}
                assert (await client.post(f"{actions}/record_start", json=body)).is_success
                await client.post(f"{actions}/send_dtmf", json={"digits": "5", "duration_millis": 300})
                conn = target.connections[0]
                await target.wait_for(lambda: len(conn.of("media")) >= 2 * 40, seconds=10)
                assert (await client.post(f"{actions}/record_stop", json={})).is_success
                await hooks.wait_until(lambda: "call.recording.saved" in event_types(hooks))
                again = await client.post(f"{actions}/record_stop", json={})
                assert again.status_code == 422 and again.json()["errors"][0]["title"] == "Not recording"
                saved = next(
                    r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.recording.saved"
                )
                url = saved["recording_urls"][fmt]
                assert saved["public_recording_urls"] == {fmt: url} and saved["channels"] == "dual"
                async with httpx.AsyncClient() as anyone:  # the link needs no API key
                    fetched = await anyone.get(url)
                await client.post(f"{actions}/hangup", json={})
    assert fetched.status_code == 200
    audio, rate = soundfile.read(io.BytesIO(fetched.content), dtype="float32", always_2d=True)
    assert audio.shape[1] == 2 and rate == 8000
    caller, call = audio[:, 0], audio[:, 1]
    assert np.sqrt(np.mean(caller**2)) < 0.01  # the stay-on-line caller says nothing
    assert len(call) / rate >= 0.3
    spectrum = np.abs(np.fft.rfft(call))
    freqs = np.fft.rfftfreq(len(call), 1 / rate)
    assert sorted(round(f) for f in freqs[np.argsort(spectrum)[-2:]]) == pytest.approx([770, 1336], abs=20)


async def test_a_recording_on_a_call_nobody_streams_runs_its_max_length_of_silence(tmp_path):
    settings = emulator_settings(speed=4, recordings_dir=tmp_path)
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(settings.replace(webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                created = await client.post(
                    "/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": "stay-on-line"}
                )
                call_id = created.json()["data"]["call_control_id"]
                await client.post(f"/v2/calls/{call_id}/actions/answer", json={})
                body = {"format": "wav", "channels": "single", "max_length": 1, "custom_file_name": "../out"}
                await client.post(f"/v2/calls/{call_id}/actions/record_start", json=body)
                listed = (await client.get(f"/_emulator/calls/{call_id}")).json()["data"]["recordings"]
                assert len(listed) == 1
                await hooks.wait_until(lambda: "call.recording.saved" in event_types(hooks), seconds=5)
                saved = next(
                    r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.recording.saved"
                )
                fetched = await client.get(saved["recording_urls"]["wav"])
                assert (await client.get(f"/_emulator/calls/{call_id}")).json()["data"]["recordings"] == []
    audio, rate = soundfile.read(io.BytesIO(fetched.content), dtype="int16")
    assert len(audio) == rate  # exactly max_length: one second, silence included
    (written,) = tmp_path.iterdir()  # inside the folder, whatever custom_file_name said
    assert written.name.endswith(".wav") and ".." not in written.name


IVR_CALLER = (
    "at_end: stay\n"
    "inbound:\n"
    "  - wait_for: {event: app_audio_end, silence_ms: 200, timeout_ms: 20000, on_timeout: hangup}\n"
    "  - dtmf: {digits: '42#', ms: 80, gap_ms: 80}\n"
)


async def test_gather_using_speak_collects_the_keys_the_caller_presses_after_the_prompt(tmp_path):
    (tmp_path / "ivr.yaml").write_text(IVR_CALLER)
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(speed=4, webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                created = await client.post(
                    "/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": str(tmp_path / "ivr.yaml")}
                )
                call_id = created.json()["data"]["call_control_id"]
                await client.post(f"/v2/calls/{call_id}/actions/answer", json={})
                body = {"payload": "Enter your code, then press pound.", "voice": "female", "maximum_digits": 5}
                assert (await client.post(f"/v2/calls/{call_id}/actions/gather_using_speak", json=body)).is_success
                await hooks.wait_until(lambda: "call.gather.ended" in event_types(hooks), seconds=15)
                ended = next(r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.gather.ended")
                assert (ended["digits"], ended["status"]) == ("42", "valid")
                digits = [
                    r.json["data"]["payload"]["digit"] for r in hooks.requests if r.event_type == "call.dtmf.received"
                ]
                assert digits == ["4", "2", "#"]
                assert "call.speak.started" not in event_types(hooks)  # a gather's prompt has no speak webhooks


async def test_gather_times_out_without_keys_and_gather_stop_cancels():
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(speed=4, webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                created = await client.post(
                    "/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": "stay-on-line"}
                )
                actions = f"/v2/calls/{created.json()['data']['call_control_id']}/actions"
                await client.post(f"{actions}/answer", json={})
                await client.post(f"{actions}/gather", json={"initial_timeout_millis": 400})
                await hooks.wait_until(lambda: "call.gather.ended" in event_types(hooks), seconds=5)
                await client.post(f"{actions}/gather", json={})
                await client.post(f"{actions}/gather_stop", json={})
                await hooks.wait_until(lambda: event_types(hooks).count("call.gather.ended") == 2, seconds=5)
    statuses = [r.json["data"]["payload"]["status"] for r in hooks.requests if r.event_type == "call.gather.ended"]
    assert statuses == ["timeout", "cancelled"]


async def test_gather_stop_also_stops_a_prompt_that_still_plays(tmp_path):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "menu.wav").write_bytes(tone_wav(440, 10))
    settings = emulator_settings(speed=4, media_dir=tmp_path / "media")
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(settings.replace(webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                created = await client.post(
                    "/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": "stay-on-line"}
                )
                actions = f"/v2/calls/{created.json()['data']['call_control_id']}/actions"
                await client.post(f"{actions}/answer", json={})
                await client.post(f"{actions}/gather_using_audio", json={"media_name": "menu.wav"})
                await hooks.wait_until(lambda: "call.playback.started" in event_types(hooks), seconds=5)
                await client.post(f"{actions}/gather_stop", json={})
                await hooks.wait_until(lambda: "call.gather.ended" in event_types(hooks), seconds=5)
                await hooks.wait_until(lambda: "call.playback.ended" in event_types(hooks), seconds=5)
    ended = next(r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.playback.ended")
    gathered = next(r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.gather.ended")
    assert (ended["status"], gathered["status"]) == ("cancelled", "cancelled")
