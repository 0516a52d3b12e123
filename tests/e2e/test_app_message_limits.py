"""Big messages from the app: every chunk the docs allow fits, a bigger one is refused by the emulator
(and said so), and heavy decoding happens off the event loop without changing what messages mean."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import httpx
import numpy as np
import pytest

from emulator.media import codecs
from emulator.media.app_audio import MAX_MESSAGE_BYTES, AppAudioDecoder
from tests.e2e.bots import AUTH, RTP, bot, frames_seen, mark, media, mp3, scenario_file, session_of, start
from tests.servers import Connection, emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

# The caller waits for the app to speak; the 30 s tail then lets a 30 s chunk play to its end.
WAIT_FOR_THE_APP = "inbound:\n  - wait_for: {event: app_audio_start, timeout_ms: 120000, on_timeout: fail}\n"


@pytest.mark.parametrize(("rate", "seconds"), [(16000, 29), (48000, 30)])
async def test_the_longest_l16_chunks_are_accepted_and_played_whole(tmp_path, rate, seconds):
    t = np.arange(rate * seconds) / rate
    chunk = (6000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    message = media(codecs.encode_l16(chunk))
    assert len(message) > 2**20  # over websockets' default limit, which closed the stream with 1009

    async def speak(ws, conn):
        await frames_seen(conn, 1)
        await ws.send(message)

    body = {**RTP, "stream_bidirectional_codec": "L16", "stream_bidirectional_sampling_rate": rate}
    settings = emulator_settings(speed=50, scenario=scenario_file(tmp_path, WAIT_FOR_THE_APP))
    async with bot(speak).running() as target, run_emulator(settings) as emulator:
        await start(emulator, target, body)
        conn = await target.wait_closed(seconds=30)
        record, recording = session_of(emulator)
        assert (record.end_reason, conn.close_code, conn.of("error")) == ("completed", 1000, [])
        app, app_rate = recording.pcm("app")
        assert app_rate == rate and app.tobytes() == chunk.tobytes()


def test_the_size_limit_holds_the_longest_chunk_with_room_to_spare():
    longest = media(bytes(30 * 48000 * 2))  # 30 s of L16 at 48 kHz, base64 in JSON
    assert len(longest) < MAX_MESSAGE_BYTES / 2


async def test_a_message_over_the_limit_is_refused_by_the_emulator_and_the_error_says_so():
    huge = json.dumps({"event": "media", "media": {"payload": "A" * (MAX_MESSAGE_BYTES + 4)}})

    async def flood(ws, conn):
        await frames_seen(conn, 2)
        await ws.send(huge)

    async with bot(flood).running() as target, run_emulator(emulator_settings(speed=4, scenario="tone")) as emulator:
        await start(emulator, target, RTP)
        conn = await target.wait_closed()
        await emulator.state.runtime.wait_idle()
        record, _ = session_of(emulator)
        assert conn.close_code == record.close_code == 1009
        assert (record.state.value, record.end_reason) == ("failed", "target_error")
        assert record.error.startswith("the emulator closed the connection: code 1009 (message too big)")


FIVE_SECONDS = "inbound:\n  - silence: {ms: 5000}\n"


def outbound_audio_before(conn: Connection, event: str) -> int:
    """Outbound media frames that carried the app's audio (not silence) before ``event`` arrived."""
    count = 0
    for message in conn.messages:
        if message["event"] == event:
            return count
        if message["event"] == "media" and message["media"]["track"] == "outbound":
            pcm = codecs.decode_ulaw(base64.b64decode(message["media"]["payload"]))
            count += int(np.any(pcm))
    raise AssertionError(f"no {event}")


async def test_mp3_is_decoded_off_the_loop_in_order_and_rate_limited_by_arrival(monkeypatch, tmp_path):
    decode_mp3 = AppAudioDecoder._decode_mp3
    threads: list[bool] = []

    def slow_decode(self, payload):
        threads.append(threading.current_thread() is threading.main_thread())
        # A long MP3. On the event loop every frame of every stream would wait for it; and taking longer
        # than the rate limit's second, it shows whether the limit counts from arrival, as it should.
        time.sleep(1.2)
        return decode_mp3(self, payload)

    monkeypatch.setattr(AppAudioDecoder, "_decode_mp3", slow_decode)

    async def speak(ws, conn):
        await frames_seen(conn, 2)
        await ws.send(media(mp3(0.4, frequency=440)))
        await ws.send(mark("after-first"))
        await frames_seen(conn, 2 + 2 * 10)  # 200 ms later, while the first is still being decoded
        await ws.send(media(mp3(0.4, frequency=440)))  # within a second of the first: 100005

    async with (
        bot(speak).running() as target,
        run_emulator(emulator_settings(speed=1, scenario=scenario_file(tmp_path, FIVE_SECONDS))) as emulator,
    ):
        await start(emulator, target, {"stream_track": "both_tracks"})
        conn = await target.wait_closed()
        record, _ = session_of(emulator)
        assert threads == [False, False]
        assert record.max_lateness < 0.3  # the loop never waited for a decode
        assert [m["payload"]["code"] for m in conn.of("error")] == [100005]
        assert record.app_audio.accepted_chunks == 1
        # The mark came back after the MP3 sent before it had played (0.4 s: ~20 frames), not before.
        assert outbound_audio_before(conn, "mark") >= 18


async def test_audio_still_decoding_when_the_stream_ends_is_never_accepted(monkeypatch):
    decode_mp3 = AppAudioDecoder._decode_mp3
    entered, done = threading.Event(), threading.Event()

    def slow_decode(self, payload):
        entered.set()
        time.sleep(0.5)
        try:
            return decode_mp3(self, payload)
        finally:
            done.set()

    monkeypatch.setattr(AppAudioDecoder, "_decode_mp3", slow_decode)

    async def speak(ws, conn):
        await frames_seen(conn, 2)
        await ws.send(media(mp3(0.4, frequency=440)))

    async with bot(speak).running() as target, run_emulator(emulator_settings(speed=1, scenario="tone")) as emulator:
        await start(emulator, target, {"stream_track": "both_tracks"})
        assert await asyncio.to_thread(entered.wait, timeout(5))
        async with httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as client:
            assert (await client.post("/calls/v3:bot/actions/streaming_stop", json={})).status_code == 200
        await target.wait_closed()
        assert await asyncio.to_thread(done.wait, timeout(5))
        await emulator.state.runtime.wait_idle()
        record, recording = session_of(emulator)
        counters = record.app_audio
        assert (counters.accepted_chunks, counters.queued_chunks, len(recording.pcm("app")[0])) == (0, 0, 0)
