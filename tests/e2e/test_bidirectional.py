"""Bidirectional media: a real WebSocket bot talks back to the emulator."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import soundfile

from emulator.media import codecs
from tests.e2e.bots import RTP, bot, frames_seen, mark, media, mp3, session_of, start
from tests.servers import Connection, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def after(conn: Connection, event: str, name: str | None = None) -> int:
    """How many inbound media frames the app had received when ``event`` arrived."""
    count = 0
    for message in conn.messages:
        if message["event"] == event and (name is None or message[event]["name"] == name):
            return count
        if message["event"] == "media" and message["media"]["track"] == "inbound":
            count += 1
    raise AssertionError(f"no {event} {name or ''}")


async def test_echoed_pcmu_is_heard_on_the_outbound_track_and_recorded_byte_exact():
    sent: list[bytes] = []

    async def echo(ws, conn):
        while len(sent) < 25:
            await frames_seen(conn, 2 * len(sent) + 2)
            inbound = [m for m in conn.of("media") if m["media"]["track"] == "inbound"]
            chunk = base64.b64decode(inbound[len(sent)]["media"]["payload"])
            sent.append(chunk)
            await ws.send(media(chunk))

    settings = emulator_settings(speed=2, scenario="default")
    async with bot(echo).running() as target, run_emulator(settings) as emulator:
        await start(emulator, target, RTP)
        conn = await target.wait_closed(seconds=10)
        record, recording = session_of(emulator)
        assert record.errors_sent == 0
        app, rate = recording.pcm("app")
        assert rate == 8000 and app.tobytes() == codecs.decode_ulaw(b"".join(sent)).tobytes()
        silence = b"\xff" * 160
        outbound = [
            base64.b64decode(m["media"]["payload"]) for m in conn.of("media") if m["media"]["track"] == "outbound"
        ]
        # The caller heard exactly what the bot sent, in order (with silence where the bot paused).
        assert [f for f in outbound if f != silence] == [c for c in sent if c != silence]


async def test_l16_round_trip_is_byte_exact_in_the_recording_and_marks_fire_after_playout():
    tone = (8000 * np.sin(2 * np.pi * 500 * np.arange(16000) / 16000)).astype(np.int16)  # 1 s at 16 kHz

    async def speak(ws, conn):
        await frames_seen(conn, 2)
        for i in range(0, len(tone), 1600):  # ten 100 ms chunks
            await ws.send(media(codecs.encode_l16(tone[i : i + 1600])))
        await ws.send(mark("spoken"))

    body = {**RTP, "stream_bidirectional_codec": "L16", "stream_bidirectional_sampling_rate": 16000}
    async with bot(speak).running() as target, run_emulator(emulator_settings(speed=4, scenario="silence")) as emulator:
        await start(emulator, target, body)
        conn = await target.wait_closed(seconds=10)
        _, recording = session_of(emulator)
        app, rate = recording.pcm("app")
        assert rate == 16000 and app.tobytes() == tone.tobytes()
        # One second of audio is 50 frames: the mark comes back once they have been played.
        assert 50 <= after(conn, "mark", "spoken") - 1 <= 54
        outbound, out_rate = recording.pcm("outbound")
        heard = outbound.astype(np.float64)
        spectrum = np.abs(np.fft.rfft(heard))
        assert out_rate == 8000 and abs(np.argmax(spectrum) * out_rate / len(heard) - 500) < 5


async def test_a_mark_with_nothing_queued_is_echoed_at_once_and_clear_echoes_pending_marks():
    async def script(ws, conn):
        await frames_seen(conn, 2)
        await ws.send(mark("idle"))
        await frames_seen(conn, 10)
        await ws.send(media(codecs.encode_ulaw(np.full(16000, 1000, dtype=np.int16))))  # 2 s
        await ws.send(mark("after-speech"))
        await frames_seen(conn, 30)
        await ws.send(json.dumps({"event": "clear"}))

    async with (
        bot(script).running() as target,
        run_emulator(emulator_settings(speed=4, scenario="silence")) as emulator,
    ):
        await start(emulator, target, RTP)
        conn = await target.wait_closed(seconds=10)
        assert after(conn, "mark", "idle") <= 4
        # Cleared after ~10 frames of a 100-frame reply: echoed at once, not after the 2 s.
        assert after(conn, "mark", "after-speech") < 30
        record, recording = session_of(emulator)
        counters = record.app_audio
        assert counters.accepted_chunks == counters.dropped_chunks == 1 and counters.dropped_samples > 0
        assert counters.accepted_samples == len(recording.pcm("app")[0]) + counters.dropped_samples
        assert counters.unplayed_samples == 0  # all of it was cleared, none left at the end
        marks = [m["mark"]["name"] for m in conn.of("mark")]
        assert marks == ["idle", "after-speech"]
        numbers = [int(m["sequence_number"]) for m in conn.messages[1:] if "sequence_number" in m]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


async def test_bad_messages_get_error_frames_and_the_stream_goes_on():
    async def script(ws, conn):
        await frames_seen(conn, 2)
        await ws.send("{not json")
        await ws.send(json.dumps({"event": "media", "media": {"payload": "@@@"}}))
        await ws.send(media(codecs.encode_ulaw(np.zeros(80, dtype=np.int16))))  # 10 ms: too short
        await ws.send(json.dumps({"event": "dance"}))

    async with bot(script).running() as target, run_emulator(emulator_settings(speed=4, scenario="tone")) as emulator:
        await start(emulator, target, RTP)
        conn = await target.wait_closed(seconds=10)
        errors = [m["payload"] for m in conn.of("error")]
        assert [e["code"] for e in errors] == [100003, 100004, 100003, 100003]
        assert [e["title"] for e in errors] == [
            "malformed_frame",
            "invalid_media",
            "malformed_frame",
            "malformed_frame",
        ]
        assert "20 ms to 30 s" in errors[2]["detail"]
        assert all(m["stream_id"] == conn.messages[1]["stream_id"] for m in conn.of("error"))
        assert conn.events()[-1] == "stop" and conn.close_code == 1000


async def test_mp3_mode_plays_files_and_rate_limits_to_one_per_second():
    async def script(ws, conn):
        await frames_seen(conn, 2)
        await ws.send(media(mp3(0.3)))
        await ws.send(media(mp3(0.3)))  # too soon
        await ws.send(media(b"\x00\x01raw audio, not mp3"))

    async with bot(script).running() as target, run_emulator(emulator_settings(speed=1, scenario="tone")) as emulator:
        await start(emulator, target, {"stream_track": "both_tracks"})  # mp3 is the default mode
        conn = await target.wait_closed(seconds=10)
        errors = [m["payload"] for m in conn.of("error")]
        assert [e["code"] for e in errors] == [100005, 100003]
        assert "rtp" in errors[1]["detail"]
        record, _ = session_of(emulator)
        assert record.app_audio.accepted_chunks == 1


def audio_file(audio_format: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(8000, dtype=np.float32), 8000, format=audio_format)
    return buffer.getvalue()


async def test_mp3_mode_takes_mp3_only_and_says_what_it_got_instead():
    async def script(ws, conn):
        await frames_seen(conn, 2)
        for payload in (audio_file("WAV"), audio_file("FLAC"), b"\x00\x01raw audio, not mp3", mp3(0.2)):
            await ws.send(media(payload))

    async with bot(script).running() as target, run_emulator(emulator_settings(speed=4, scenario="tone")) as emulator:
        await start(emulator, target, {"stream_track": "both_tracks"})
        conn = await target.wait_closed(seconds=10)
        details = [m["payload"]["detail"] for m in conn.of("error")]
        assert [m["payload"]["code"] for m in conn.of("error")] == [100003] * 3
        assert "a WAV file, not MP3" in details[0] and "a FLAC file, not MP3" in details[1]
        assert details[2].startswith("Media payload is not an MP3 file (Format not recognised)")
        assert not any("<" in detail or "0x" in detail for detail in details)  # no Python object reprs
        record, _ = session_of(emulator)
        assert record.app_audio.accepted_chunks == 1


async def test_a_rejected_g722_chunk_does_not_disturb_the_chunks_after_it():
    t = np.arange(16000) / 16000
    encoded = codecs.encode("G722", (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16))  # 1 s
    first, second = encoded[:4000], encoded[4000:]

    async def speak(ws, conn):
        await frames_seen(conn, 2)
        await ws.send(media(first))
        await ws.send(media(second[:80]))  # 10 ms: refused
        await ws.send(media(second))

    body = {**RTP, "stream_bidirectional_codec": "G722"}
    async with bot(speak).running() as target, run_emulator(emulator_settings(speed=4, scenario="silence")) as emulator:
        await start(emulator, target, body)
        conn = await target.wait_closed(seconds=10)
        assert [m["payload"]["code"] for m in conn.of("error")] == [100003]
        _, recording = session_of(emulator)
        app, rate = recording.pcm("app")
        assert rate == 16000 and app.tobytes() == codecs.decode("G722", encoded).tobytes()


async def test_line_wrapped_base64_is_accepted():
    chunk = codecs.encode_ulaw(np.full(1600, 1200, dtype=np.int16))  # 200 ms

    async def speak(ws, conn):
        await frames_seen(conn, 2)
        wrapped = base64.encodebytes(chunk).decode()  # what Python's MIME-style encoder gives
        await ws.send(json.dumps({"event": "media", "media": {"payload": wrapped}}))

    async with bot(speak).running() as target, run_emulator(emulator_settings(speed=4, scenario="tone")) as emulator:
        await start(emulator, target, RTP)
        conn = await target.wait_closed(seconds=10)
        assert conn.of("error") == []
        _, recording = session_of(emulator)
        assert recording.pcm("app")[0].tobytes() == codecs.decode_ulaw(chunk).tobytes()
