"""A minimal Telnyx voice bot, written as against the real Telnyx API: nothing here knows the emulator.

- ``POST /webhooks``: verifies each webhook with the official SDK; answers incoming calls with a media
  stream to this bot's ``/media`` WebSocket (bidirectional, raw μ-law). Telnyx may deliver a webhook
  twice (a retry after a slow answer): events are handled once per event id, and the answer carries a
  ``command_id``, so even a second answer would be ignored by the API.
- ``WS /media``: counts the caller's audio and echoes it back, so the caller hears themselves; collects
  the keys they press and, after three, hangs up.

Run it (see README.md beside this file):

    TELNYX_API_KEY=KEY TELNYX_PUBLIC_KEY=... TELNYX_BASE_URL=http://127.0.0.1:8000/v2 \\
        python examples/voice_bot/bot.py --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
from dataclasses import dataclass, field

import telnyx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger("voice_bot")

DIGITS_BEFORE_HANGUP = 3


@dataclass
class CallStats:
    """What the bot saw of one call's stream."""

    call_control_id: str
    media_frames: int = 0
    audio_bytes: int = 0
    echoed_frames: int = 0
    digits: str = ""
    hung_up: bool = False
    stopped: asyncio.Event = field(default_factory=asyncio.Event)  # the stream's `stop` arrived


class VoiceBot:
    def __init__(self, client: telnyx.AsyncTelnyx, *, stream_url: str | None = None) -> None:
        self.client = client
        # Where Telnyx should stream to; by default this bot's own host, as the webhook reached it.
        self.stream_url = stream_url
        self.calls: dict[str, CallStats] = {}
        self.seen_events: set[str] = set()  # webhook event ids already handled (grows with traffic; a demo)

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/webhooks", self.webhook, methods=["POST"]), WebSocketRoute("/media", self.media)]
        )

    async def webhook(self, request: Request) -> Response:
        body = (await request.body()).decode("utf-8")
        try:
            event = self.client.webhooks.unwrap(body, headers=request.headers)
        except Exception:  # a forged or stale webhook: refuse it
            log.warning("webhook with a bad signature refused")
            return Response(status_code=400)
        data = event.data
        if data.id in self.seen_events:  # a retried delivery of an event already handled
            return Response(status_code=200)
        self.seen_events.add(data.id)
        log.info("webhook %s", data.event_type)
        if data.event_type == "call.initiated" and data.payload.direction == "incoming":
            stream_url = self.stream_url or str(request.url.replace(scheme="ws", path="/media", query=""))
            # Acknowledge the webhook at once; answer right after (Telnyx waits 2 s at most for a 2xx).
            return Response(
                status_code=200, background=BackgroundTask(self.answer, data.payload.call_control_id, stream_url)
            )
        return Response(status_code=200)

    async def answer(self, call_control_id: str, stream_url: str) -> None:
        await self.client.calls.actions.answer(
            call_control_id,
            command_id=f"answer-{call_control_id}",
            stream_url=stream_url,
            stream_track="inbound_track",
            # rtp: the bot sends raw μ-law back; the default (mp3) would expect MP3 files.
            stream_bidirectional_mode="rtp",
            stream_bidirectional_codec="PCMU",
        )

    async def media(self, websocket: WebSocket) -> None:
        await websocket.accept()
        stats: CallStats | None = None
        try:
            while True:
                frame = json.loads(await websocket.receive_text())
                event = frame.get("event")
                if event == "start":
                    call_control_id = frame["start"]["call_control_id"]
                    stats = self.calls.setdefault(call_control_id, CallStats(call_control_id))
                elif event == "media" and stats is not None:
                    payload = frame["media"]["payload"]
                    stats.media_frames += 1
                    stats.audio_bytes += len(base64.b64decode(payload))
                    await websocket.send_text(json.dumps({"event": "media", "media": {"payload": payload}}))
                    stats.echoed_frames += 1
                elif event == "dtmf" and stats is not None:
                    stats.digits += frame["dtmf"]["digit"]
                    if len(stats.digits) == DIGITS_BEFORE_HANGUP and not stats.hung_up:
                        stats.hung_up = True
                        await self.client.calls.actions.hangup(stats.call_control_id)
                elif event == "stop":
                    break
        except WebSocketDisconnect:
            pass
        finally:
            if stats is not None:
                stats.stopped.set()
                log.info("call %s: %d media frames, digits %r", stats.call_control_id, stats.media_frames, stats.digits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--stream-url", help="WebSocket URL Telnyx streams to (default: ws://HOST:PORT/media)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # The SDK reads TELNYX_API_KEY, TELNYX_PUBLIC_KEY and TELNYX_BASE_URL from the environment.
    client = telnyx.AsyncTelnyx(public_key=os.environ.get("TELNYX_PUBLIC_KEY"))
    bot = VoiceBot(client, stream_url=args.stream_url)
    uvicorn.run(bot.app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
