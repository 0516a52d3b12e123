"""Nothing the app sends is lost: audio cut short by the end of the stream is recorded as played up to
the cut and counted as unplayed after it, whatever ended the stream, and pending marks are not echoed."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from emulator import codecs
from tests.e2e.bots import AUTH, RTP, bot, frames_seen, mark, media, scenario_file, session_of, start
from tests.servers import emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

RATE = 8000  # PCMU


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
