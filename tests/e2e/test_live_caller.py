"""The caller driven live (``POST /_emulator/calls/{id}/caller``): keys, speech, files and silence played as the
scenario's steps would be, its scenario paused meanwhile; and ``telnyx-emulator call --follow`` turning a
terminal's keys into those actions. Real emulator, real stream target, real webhook receiver."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import re
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from emulator.call_command import key_action, without_escapes
from emulator.media import codecs
from emulator.testing import AsyncControlPlane, ControlPlaneError
from tests.contract import assert_documented
from tests.e2e.test_call_audio import file_server, tone_wav
from tests.receivers import WebhookReceiver
from tests.servers import Connection, WsReceiver, emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
pytest_plugins = ["pytester"]

CALLER, APP_NUMBER = "+13125550111", "+13125550122"
CALLER_PATH = "/_emulator/calls/{call_control_id}/caller"
# Said by a shipped scenario in the default voice, so its speech is bundled: no espeak-ng needed.
WORDS = "And do I need an appointment?"
FRAME = 160  # PCMU samples per 20 ms frame
SOUND = 30.0  # RMS above this is sound; the silent caller's frames are exact zeros


def client_for(emulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=emulator.url, headers={"Authorization": "Bearer test-key"})


async def act(client: httpx.AsyncClient, call_id: str, body: object) -> httpx.Response:
    """The caller's action, its answer checked against the OpenAPI document."""
    response = await client.post(f"/_emulator/calls/{call_id}/caller", json=body)
    assert_documented(response, CALLER_PATH)
    return response


async def answered(client: httpx.AsyncClient, target: WsReceiver, **answer) -> tuple[str, Connection]:
    """An incoming call, answered with a stream to ``target``, once a few frames have arrived."""
    created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})
    call_id = created.json()["data"]["call_control_id"]
    body = {"stream_url": target.url, **answer}
    assert (await client.post(f"/v2/calls/{call_id}/actions/answer", json=body)).status_code == 200
    conn = await target.wait_connection()
    await target.wait_for(lambda: len(conn.of("media")) >= 5)
    return call_id, conn


def inbound_pcm(conn: Connection) -> np.ndarray:
    """The caller's track as sent, decoded, one row per 20 ms frame (frame i is tick i: the stream began at the
    answer)."""
    payloads = [base64.b64decode(m["media"]["payload"]) for m in conn.of("media") if m["media"]["track"] == "inbound"]
    return codecs.decode("PCMU", b"".join(payloads)).astype(np.float64).reshape(-1, FRAME)


def loudness(frames: np.ndarray) -> np.ndarray:
    return np.sqrt((frames**2).mean(axis=1))


def dominant(frames: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(frames.reshape(-1)))
    return float(np.argmax(spectrum) * 8000 / frames.size)


def events(hooks: WebhookReceiver, event_type: str) -> list[dict]:
    return [r.json["data"]["payload"] for r in hooks.requests if r.event_type == event_type]


async def test_live_dtmf_is_reported_streamed_and_gathered_as_the_scenarios_keys_are():
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        settings = emulator_settings(webhook_url=hooks.url, scenario="stay-on-line")
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            call_id, conn = await answered(client, target)
            gather = {"maximum_digits": 5, "timeout_millis": 60000}
            assert (await client.post(f"/v2/calls/{call_id}/actions/gather", json=gather)).status_code == 200

            response = await act(client, call_id, {"dtmf": "12#"})
            assert response.status_code == 200
            data = response.json()["data"]
            assert (data["call_control_id"], data["action"], data["duration_ms"]) == (call_id, "dtmf", 500)
            assert data["at_ms"] % 20 == 0 and data["at_ms"] >= 5 * 20  # after the frames already streamed

            await hooks.wait_until(lambda: len(events(hooks, "call.gather.ended")) == 1)
            assert [p["digit"] for p in events(hooks, "call.dtmf.received")] == ["1", "2", "#"]
            (ended,) = events(hooks, "call.gather.ended")
            assert (ended["digits"], ended["status"]) == ("12", "valid")  # # ends the gather
            await target.wait_for(lambda: len(conn.of("dtmf")) == 3)
            assert [m["dtmf"]["digit"] for m in conn.of("dtmf")] == ["1", "2", "#"]
            # Each digit is reported the tick after its tone, before that tick's media: 1's tone ends 100 ms in.
            first = conn.events().index("dtmf")
            start = data["at_ms"] // 20
            assert conn.events()[:first].count("media") == start + 5
            pcm = inbound_pcm(conn)
            assert loudness(pcm[start : start + 5]).min() > SOUND and loudness(pcm[start - 5 : start]).max() == 0
            await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})
            await emulator.state.runtime.wait_idle()
            assert emulator.state.runtime.failures == []


async def test_live_speech_is_heard_on_the_stream_in_its_recording_and_by_transcription():
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        settings = emulator_settings(webhook_url=hooks.url, scenario="stay-on-line")
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            call_id, conn = await answered(client, target, transcription=True)
            response = await act(client, call_id, {"say": WORDS})
            assert response.status_code == 200
            data = response.json()["data"]
            start, frames = data["at_ms"] // 20, data["duration_ms"] // 20
            assert data["action"] == "say" and 1000 < data["duration_ms"] < 3000

            said = [("inbound", WORDS, True)]
            await hooks.wait_until(
                lambda: (
                    [
                        (t["transcription_track"], t["transcript"], t["is_final"])
                        for t in (p["transcription_data"] for p in events(hooks, "call.transcription"))
                        if t["is_final"]
                    ]
                    == said
                )
            )
            await target.wait_for(lambda: len(conn.of("media")) >= start + frames + 10)
            pcm = inbound_pcm(conn)
            sound = np.flatnonzero(loudness(pcm) > SOUND)
            # The speech, trimmed of silence, fills its frames from at_ms on: silence before and after.
            assert sound[0] == start and start + frames - 2 <= sound[-1] < start + frames

            await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})
            await target.wait_closed()
            (stream,) = (await client.get("/_emulator/streams")).json()["data"]
            wav = await client.get(f"/_emulator/streams/{stream['stream_id']}/recording/inbound.wav")
            recorded, rate = soundfile.read(io.BytesIO(wav.content), dtype="int16")
            # The stream's recording is what was sent: its samples encode to the very payloads streamed.
            streamed = b"".join(base64.b64decode(m["media"]["payload"]) for m in conn.of("media"))
            assert rate == 8000 and codecs.encode("PCMU", recorded) == streamed


async def test_the_scenario_pauses_while_live_steps_play_and_resumes_that_much_later(tmp_path: Path):
    (tmp_path / "tone.yaml").write_text("at_end: stay\ninbound:\n  - tone: {frequency: 1000, ms: 3000}\n")
    async with WsReceiver().running() as target:
        settings = emulator_settings(scenario=str(tmp_path / "tone.yaml"), speed=4)  # 3 s of tone in 0.75 s
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            call_id, conn = await answered(client, target)
            key = (await act(client, call_id, {"dtmf": "5"})).json()["data"]
            quiet = (await act(client, call_id, {"silence_ms": 500.0})).json()["data"]  # 500.0 is an integer in JSON
            start = key["at_ms"] // 20
            assert start < 150, "the steps came after the tone: too slow a machine for this test"
            assert (key["duration_ms"], quiet["at_ms"], quiet["duration_ms"]) == (100, key["at_ms"] + 100, 500)

            await target.wait_for(lambda: len(conn.of("media")) >= 200, seconds=10)
            pcm = inbound_pcm(conn)
            level = loudness(pcm)
            assert dominant(pcm[:start]) == pytest.approx(1000, abs=20)  # the scenario's tone
            assert round(dominant(pcm[start : start + 5]), -1) in (770, 1340)  # 5: 770 + 1336 Hz
            assert level[start + 5 : start + 30].max() == 0  # the live silence
            # The tone resumes where it paused and ends 600 ms (the live steps) later than scripted: at 3.6 s.
            assert level[start + 30 : 180].min() > SOUND and dominant(pcm[start + 30 : 180]) == pytest.approx(
                1000, abs=20
            )
            assert level[180:200].max() == 0
            assert [m["dtmf"]["digit"] for m in conn.of("dtmf")] == ["5"]
            await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})


async def test_play_takes_a_file_from_the_scenario_folder_or_a_url():
    async with WsReceiver().running() as target, file_server({"/beep.wav": tone_wav(1000, 0.5)}) as files:
        settings = emulator_settings(scenario="stay-on-line")
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            call_id, conn = await answered(client, target)
            url = (await act(client, call_id, {"play": f"{files}/beep.wav"})).json()["data"]
            hello = (await act(client, call_id, {"play": "audio/hello.wav"})).json()["data"]  # shipped with scenarios
            assert url["duration_ms"] == 500 and hello["at_ms"] >= url["at_ms"] + 500  # after it, or later
            assert 3000 < hello["duration_ms"] < 6000

            end = (hello["at_ms"] + hello["duration_ms"]) // 20
            await target.wait_for(lambda: len(conn.of("media")) >= end + 5)
            pcm = inbound_pcm(conn)
            start = url["at_ms"] // 20
            assert dominant(pcm[start : start + 25]) == pytest.approx(1000, abs=20)
            assert loudness(pcm[start + 25 : end]).max() > 1000 and loudness(pcm[end:]).max() == 0

            missing = await act(client, call_id, {"play": "audio/no-such.wav"})
            (error,) = missing.json()["errors"]
            assert missing.status_code == 422 and error["source"] == {"pointer": "/play"}
            assert error["detail"] == "Cannot read 'audio/no-such.wav': No such file or directory."
            gone = (await act(client, call_id, {"play": f"{files}/gone.wav"})).json()["errors"][0]
            assert gone["detail"] == f"{files}/gone.wav answered HTTP 404." and gone["title"] == "Audio not available"
            await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})


@pytest.mark.parametrize("codec", ["G722", "L16"])
async def test_a_stream_at_another_rate_hears_the_live_step_at_the_same_moment(codec):
    """The call runs at 8 kHz (PCMU); these streams at 16 kHz hear the live tone rendered at their own rate,
    G.722 through its encoder, L16 from the payloads encoded with the step."""
    async with WsReceiver().running() as target, file_server({"/beep.wav": tone_wav(1000, 0.2)}) as files:
        settings = emulator_settings(scenario="stay-on-line")
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            call_id, conn = await answered(client, target, stream_codec=codec)
            beep = (await act(client, call_id, {"play": f"{files}/beep.wav"})).json()["data"]
            start = beep["at_ms"] // 20
            await target.wait_for(lambda: len(conn.of("media")) >= start + 20)
            payloads = b"".join(base64.b64decode(m["media"]["payload"]) for m in conn.of("media"))
            pcm = codecs.decode(codec, payloads).astype(np.float64).reshape(-1, 320)
            level = loudness(pcm)
            assert level[start : start + 10].min() > SOUND and level[start + 11 : start + 20].max() < SOUND
            assert level[: start - 1].max() < SOUND
            spectrum = np.abs(np.fft.rfft(pcm[start + 1 : start + 9].reshape(-1)))
            assert np.argmax(spectrum) * 16000 / (8 * 320) == pytest.approx(1000, abs=20)
            await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})


async def test_a_hangup_waits_for_the_live_steps_before_it():
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        # In real time, so that the keys still play when the hangup comes (at speed 0 they would be long over).
        settings = emulator_settings(webhook_url=hooks.url, scenario="stay-on-line", speed=1)
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            call_id, conn = await answered(client, target)
            keys = (await act(client, call_id, {"dtmf": "999"})).json()["data"]
            hangup = (await act(client, call_id, {"hangup": True})).json()["data"]
            assert (hangup["action"], hangup["at_ms"], hangup["duration_ms"]) == ("hangup", keys["at_ms"] + 500, 0)
            # Behind a queued hangup nothing would ever play: refused, not answered 200 and dropped.
            late = await act(client, call_id, {"silence_ms": 500.0})
            assert late.status_code == 422 and late.json()["errors"][0]["source"]["pointer"] == "/silence_ms"
            assert late.json()["errors"][0]["title"] == "Caller has hung up"
            await hooks.wait_until(lambda: len(events(hooks, "call.hangup")) == 1)
            (ended,) = events(hooks, "call.hangup")
            assert (ended["hangup_cause"], ended["hangup_source"]) == ("normal_clearing", "caller")
            assert [p["digit"] for p in events(hooks, "call.dtmf.received")] == ["9"] * 3  # all pressed, then the end
            await target.wait_closed()
            assert len(conn.of("media")) * 20 == hangup["at_ms"]
            call = (await client.get(f"/_emulator/calls/{call_id}")).json()["data"]
            assert call["metrics"]["media_ms"] == hangup["at_ms"]


async def test_refusals_before_the_answer_after_the_end_and_for_bad_bodies():
    async with run_emulator(emulator_settings(scenario="stay-on-line")) as emulator, client_for(emulator) as client:
        created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})
        call_id = created.json()["data"]["call_control_id"]
        for body in ({"dtmf": "1"}, {"say": WORDS}, {"play": "audio/hello.wav"}, {"silence_ms": 100}):
            ringing = await act(client, call_id, body)
            (error,) = ringing.json()["errors"]
            assert ringing.status_code == 422 and error["code"] == "90034", body
            assert error["source"] == {"pointer": f"/{next(iter(body))}"}
            assert 'it can only hang up ({"hangup": true})' in error["detail"]

        for body, pointers in (
            ({}, [None]),
            ({"dtmf": "1", "say": "hi"}, [None]),
            ({"dtmf": "12x"}, ["/dtmf"]),
            ({"dtmf": ""}, ["/dtmf"]),
            ({"dtmf": 1}, ["/dtmf"]),
            ({"say": ""}, ["/say"]),
            ({"silence_ms": 0}, ["/silence_ms"]),
            ({"silence_ms": 60_001}, ["/silence_ms"]),
            ({"hangup": False}, ["/hangup"]),
            ({"press": "1"}, ["/press"]),
            ({"press": "1", "dtmf": "1"}, [None, "/press"]),
        ):
            response = await act(client, call_id, body)
            assert response.status_code == 422, body
            assert [e.get("source", {}).get("pointer") for e in response.json()["errors"]] == pointers, body
        both = (await act(client, call_id, {"dtmf": "1", "say": "hi"})).json()["errors"][0]
        assert (both["code"], both["title"]) == ("10015", "Invalid caller action")
        assert both["detail"].startswith("Give exactly one action: dtmf, say, play, silence_ms or hangup")
        keys = (await act(client, call_id, {"dtmf": "12x"})).json()["errors"][0]
        assert keys["detail"] == "The 'dtmf' parameter must be DTMF keys: 0-9, *, #, A-D."

        # A call the app made up (lenient mode) is answered, but has no caller before its first streaming_start.
        assert (await client.post("/v2/calls/made-up/actions/gather_stop", json={})).status_code == 200
        no_media = (await act(client, "made-up", {"say": WORDS})).json()["errors"][0]
        assert (no_media["code"], no_media["title"], no_media["source"]) == (
            "90034",
            "Call has no media yet",
            {"pointer": "/say"},
        )

        assert (await client.post(f"/v2/calls/{call_id}/actions/answer", json={})).status_code == 200
        assert (await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})).status_code == 200
        ended = await act(client, call_id, {"dtmf": "1"})
        assert ended.status_code == 422 and ended.json()["errors"][0]["code"] == "90018"
        assert emulator.state.runtime.failures == []


async def test_the_control_plane_client_sends_one_action_per_call():
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url, scenario="stay-on-line")
        async with run_emulator(settings) as emulator:
            control = AsyncControlPlane(emulator.url, "test-key")
            call_id = (await control.incoming_call(CALLER, APP_NUMBER))["call_control_id"]
            with pytest.raises(ControlPlaneError) as refused:
                await control.caller(call_id, dtmf="1")
            assert refused.value.status == 422 and refused.value.errors[0]["code"] == "90034"
            with pytest.raises(TypeError, match="exactly one action"):
                await control.caller(call_id, dtmf="1", say="hi")
            async with client_for(emulator) as client:
                assert (await client.post(f"/v2/calls/{call_id}/actions/answer", json={})).status_code == 200
            pressed = await control.caller(call_id, dtmf="4")
            assert (pressed["action"], pressed["duration_ms"]) == ("dtmf", 100)
            assert (await control.caller(call_id, silence_ms=40))["duration_ms"] == 40
            assert (await control.caller(call_id, hangup=True))["action"] == "hangup"
            await hooks.wait_until(lambda: len(events(hooks, "call.hangup")) == 1)
            assert [p["digit"] for p in events(hooks, "call.dtmf.received")] == ["4"]


def test_the_example_in_docs_pytest_md_passes_as_written(pytester):
    docs = (Path(__file__).resolve().parents[2] / "docs" / "pytest.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```python\n(# The caller, live: .*?)```", docs, flags=re.DOTALL)
    pytester.makepyfile(test_live_example=example)
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio").assert_outcomes(passed=1)


def test_keys_map_to_the_callers_actions():
    assert [key_action(key) for key in "19*#AdhH"] == [
        {"dtmf": "1"},
        {"dtmf": "9"},
        {"dtmf": "*"},
        {"dtmf": "#"},
        {"dtmf": "A"},
        {"dtmf": "D"},
        {"hangup": True},
        {"hangup": True},
    ]
    assert [key_action(key) for key in ("x", " ", "\n", "\x1b", "12")] == [None] * 5
    # Arrow and function keys send escape sequences whose last letter must not press A to D.
    assert without_escapes("1\x1b[A2\x1b[1;5C#\x1bOPh\x1b") == "12#h"


@pytest.mark.skipif(sys.platform == "win32", reason="no pseudo-terminals on Windows")
async def test_call_follow_reads_keys_from_a_terminal_and_restores_it():
    import pty
    import termios

    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url, scenario="stay-on-line")
        async with run_emulator(settings) as emulator:
            leader, follower = pty.openpty()
            before = termios.tcgetattr(follower)
            argv = ["call", "--from", CALLER, "--to", APP_NUMBER, "--emulator", emulator.url, "--api-key", "test-key"]
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "emulator", *argv, "--follow", stdin=follower, stdout=asyncio.subprocess.PIPE
            )
            lines: list[str] = []

            async def read_until(text: str) -> None:
                assert process.stdout is not None
                async with asyncio.timeout(timeout(30)):  # the command starts a Python: slow on a busy machine
                    while not any(text in line for line in lines):
                        line = await process.stdout.readline()
                        assert line, f"the command ended before printing {text!r}: {lines}"
                        lines.append(line.decode().rstrip("\n"))

            try:
                await read_until("keys: ")  # the terminal is in cbreak mode from here on
                call_id = (await hooks.wait_for(1))[0].json["data"]["payload"]["call_control_id"]
                async with client_for(emulator) as client:
                    assert (await client.post(f"/v2/calls/{call_id}/actions/answer", json={})).status_code == 200
                await read_until("call.answered")
                os.write(leader, b"x7")  # x is no key of the caller's: ignored
                await read_until(">> dtmf 7")
                await read_until("call.dtmf.received")
                os.write(leader, b"h")
                await read_until("call.hangup")
                async with asyncio.timeout(timeout(10)):
                    assert await process.wait() == 0
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                after = termios.tcgetattr(follower)
                os.close(leader)
                os.close(follower)
    assert "keys: 0-9 * # A-D press DTMF, h hangs up, Ctrl-C stops following" in lines
    assert any(line.startswith(">> dtmf 7: sent, at ") and line.endswith(" ms of the call's media") for line in lines)
    assert any(line.startswith(">> hangup: sent") for line in lines)
    assert [p["digit"] for p in events(hooks, "call.dtmf.received")] == ["7"]
    assert after == before  # echo and line editing are back
