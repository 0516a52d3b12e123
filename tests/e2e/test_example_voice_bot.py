"""examples/voice_bot drives a whole call through the emulator: an incoming call from the control plane,
call.initiated to the bot, the bot answers with the official SDK, the emulator streams to the bot's
WebSocket, the bot echoes the audio and hangs up after three keys."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn

from tests.servers import timeout

telnyx = pytest.importorskip("telnyx")
bot_module = pytest.importorskip("examples.voice_bot.bot")

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.sdk]


async def serve(app) -> tuple[uvicorn.Server, asyncio.Task, int]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(timeout(10)):
        while not server.started:
            await asyncio.sleep(0.005)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


# Paced (ten times real time): a bot that talks back reads no faster than a real call sends, and at
# speed 0 the whole call would be over before its first reply.
@pytest.mark.telnyx_emulator(speed=10)
async def test_the_example_bot_answers_echoes_and_hangs_up_after_three_keys(telnyx_emulator):
    client = telnyx.AsyncTelnyx(
        api_key=telnyx_emulator.api_key, base_url=telnyx_emulator.api_url, public_key=telnyx_emulator.public_key
    )
    bot = bot_module.VoiceBot(client)
    server, task, port = await serve(bot.app())
    try:
        call = await telnyx_emulator.acontrol.incoming_call(
            "+13125550111", "+13125550122", webhook_url=f"http://127.0.0.1:{port}/webhooks"
        )
        call_id = call["call_control_id"]
        async with asyncio.timeout(timeout(10)):
            while call_id not in bot.calls:
                await asyncio.sleep(0.01)
            await bot.calls[call_id].stopped.wait()
        stats = bot.calls[call_id]
        assert stats.digits == "123" and stats.hung_up
        # Every frame is echoed, but for one that may arrive as the emulator closes the stream after the hangup.
        assert stats.media_frames > 0 and stats.media_frames - 1 <= stats.echoed_frames <= stats.media_frames
        assert stats.audio_bytes == 160 * stats.media_frames  # 20 ms of 8 kHz μ-law per frame

        seen = await telnyx_emulator.acontrol.call(call_id)
        assert seen["state"] == "ended" and seen["direction"] == "incoming"
        (stream,) = seen["streams"]
        # The caller's script may end (half a second after the last key) before the hangup lands.
        assert stream["end_reason"] in {"hangup", "completed"} and 0 < stream["frames_received"] <= stats.echoed_frames
        await telnyx_emulator.state.runtime.wait_idle()
        attempts = await telnyx_emulator.acontrol.webhooks()
        # The bot's first webhook can miss the 2 s timeout while the SDK imports its verifier, and be
        # retried: every event was delivered, in order, whatever the number of attempts.
        delivered = list(dict.fromkeys(w["event_type"] for w in attempts if w["status"] == 200))
        assert delivered[:3] == ["call.initiated", "call.answered", "streaming.started"]
        assert {"call.hangup", "streaming.stopped"} <= set(delivered)
        # A retried call.initiated is handled once: one answer reached the API.
        answers = [c for c in await telnyx_emulator.acontrol.commands() if c["path"].endswith("/actions/answer")]
        assert len(answers) == 1
    finally:
        server.should_exit = True
        await task
        await client.close()
