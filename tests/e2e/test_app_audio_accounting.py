"""Nothing the app sends is lost: audio cut short by the end of the stream is recorded as played up to
the cut and counted as unplayed after it, whatever ended the stream, and pending marks are not echoed."""

from __future__ import annotations

import io
import json
import wave

import httpx
import numpy as np
import pytest

from emulator.media import codecs
from tests.contract import assert_documented
from tests.e2e.bots import AUTH, RTP, bot, frames_seen, mark, media, scenario_file, session_of, start
from tests.servers import emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

RATE = 8000  # PCMU
STREAM_PATH = "/_emulator/streams/{stream_id}"


def ulaw(seconds: float, value: int = 2000) -> bytes:
    return codecs.encode_ulaw(np.full(int(RATE * seconds), value, dtype=np.int16))


def assert_cut_short(record, recording, sent: bytes, *, chunks: int) -> int:
    """The recording is the start of what was sent, every sample is accounted for, and the stream
    ended cleanly without echoing the pending mark; returns how many samples played."""
    counters = record.app_audio
    app, rate = recording.pcm("app")
    played = counters.played_samples
    assert rate == RATE and len(app) == played > 0
    assert app.tobytes() == codecs.decode_ulaw(sent)[:played].tobytes()
    assert counters.accepted_samples == len(sent) == played + counters.dropped_samples
    assert counters.dropped_samples == counters.unplayed_samples > 0  # nothing was cleared
    assert counters.accepted_chunks == chunks == counters.played_chunks + counters.dropped_chunks
    assert counters.queued_samples == counters.queued_chunks == 0
    return played


def no_mark_and_stop_last(conn) -> None:
    assert conn.of("mark") == [] and conn.events()[-1] == "stop" and conn.close_code == 1000


async def test_streaming_stop_mid_chunk_records_what_played_and_counts_the_rest_as_unplayed():
    chunk = ulaw(10)

    async def speak(ws, conn):
        await frames_seen(conn, 2)
        await ws.send(media(chunk))
        await ws.send(mark("reply-done"))

    async with bot(speak).running() as target, run_emulator(emulator_settings(speed=4, scenario="silence")) as emulator:
        await start(emulator, target, RTP)
        conn = await target.wait_connection()
        await frames_seen(conn, 2 * 50)  # a second of media on both tracks
        async with httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as client:
            assert (await client.post("/calls/v3:bot/actions/streaming_stop", json={})).status_code == 200
        await target.wait_closed()
        record, recording = session_of(emulator)
        assert record.end_reason == "stopped"
        played = assert_cut_short(record, recording, chunk, chunks=1)
        assert played < len(chunk) // 2
        no_mark_and_stop_last(conn)


async def test_a_caller_hangup_mid_chunk_cuts_it_where_the_caller_hung_up(tmp_path):
    scenario = scenario_file(
        tmp_path,
        "inbound:\n"
        "  - wait_for: {event: app_audio_start, after_ms: 500, timeout_ms: 60000, on_timeout: fail}\n"
        "  - hangup: {}\n",
    )
    chunk = ulaw(10)

    async def speak(ws, conn):
        await frames_seen(conn, 1)
        await ws.send(media(chunk))
        await ws.send(mark("reply-done"))

    async with bot(speak).running() as target, run_emulator(emulator_settings(speed=10, scenario=scenario)) as emulator:
        await start(emulator, target, RTP)
        conn = await target.wait_closed()
        record, recording = session_of(emulator)
        assert record.end_reason == "hangup"
        # The caller hangs up 500 ms (25 frames) into the reply: media time, the same at every speed.
        assert assert_cut_short(record, recording, chunk, chunks=1) == 25 * 160
        no_mark_and_stop_last(conn)


async def test_the_tail_limit_cuts_a_reply_30_s_after_the_caller_finished(tmp_path):
    scenario = scenario_file(
        tmp_path,
        "inbound:\n  - wait_for: {event: app_audio_start, timeout_ms: 60000, on_timeout: fail}\n",
    )
    chunks = [ulaw(20, 1000), ulaw(20, 3000)]

    async def speak(ws, conn):
        await frames_seen(conn, 1)
        for chunk in chunks:
            await ws.send(media(chunk))
        await ws.send(mark("reply-done"))

    async with bot(speak).running() as target, run_emulator(emulator_settings(speed=40, scenario=scenario)) as emulator:
        await start(emulator, target, RTP)
        conn = await target.wait_closed(seconds=15)
        record, recording = session_of(emulator)
        assert record.end_reason == "completed"
        played = assert_cut_short(record, recording, b"".join(chunks), chunks=2)
        assert 30 * RATE <= played <= 30 * RATE + 2 * 160  # the caller's last frame, then 30 s of tail
        assert (record.app_audio.played_chunks, record.app_audio.unplayed_chunks) == (1, 1)
        no_mark_and_stop_last(conn)


async def test_the_counters_and_the_app_recording_agree_over_http():
    first, second = ulaw(2, 1000), ulaw(10, 3000)

    async def speak(ws, conn):
        await frames_seen(conn, 2)
        await ws.send(media(first))
        await frames_seen(conn, 2 + 2 * 20)
        await ws.send(json.dumps({"event": "clear"}))  # cuts the first chunk 0.4 s in
        await ws.send(media(second))  # cut by streaming_stop below

    async with bot(speak).running() as target, run_emulator(emulator_settings(speed=4, scenario="silence")) as emulator:
        await start(emulator, target, RTP)
        conn = await target.wait_connection()
        await frames_seen(conn, 2 + 2 * 80)
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            assert (await client.post("/v2/calls/v3:bot/actions/streaming_stop", json={})).status_code == 200
            await target.wait_closed()
            stream_id = conn.messages[1]["stream_id"]
            stream = assert_documented(await client.get(f"/_emulator/streams/{stream_id}"), STREAM_PATH)["data"]
            wav = await client.get(f"/_emulator/streams/{stream_id}/recording/app.wav")
        audio = stream["app_audio"]
        accepted, played, dropped = audio["accepted"], audio["played"], audio["dropped"]
        assert audio["sample_rate"] == RATE and accepted == {"chunks": 2, "ms": 12000.0, "samples": 12 * RATE}
        assert accepted["samples"] == played["samples"] + dropped["samples"]
        assert accepted["ms"] == pytest.approx(played["ms"] + dropped["ms"], abs=0.002)
        assert (played["chunks"], dropped["chunks"], audio["unplayed"]["chunks"]) == (0, 2, 1)
        assert 0 < audio["unplayed"]["samples"] < dropped["samples"]  # the rest was cleared
        assert audio["queued"] == {"chunks": 0, "ms": 0.0, "samples": 0}

        assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
        with wave.open(io.BytesIO(wav.content)) as file:
            assert (file.getframerate(), file.getnframes()) == (RATE, played["samples"])
            samples = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2")
        heard_first = int(np.sum(samples == codecs.decode_ulaw(first)[0]))
        assert 0 < heard_first < len(first) and heard_first < len(samples)
        expected = np.concatenate([codecs.decode_ulaw(first)[:heard_first], codecs.decode_ulaw(second)])
        assert samples.tobytes() == expected[: len(samples)].tobytes()
