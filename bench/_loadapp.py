"""A minimal voice app for bench/load.py, in its own process: it answers every incoming call with a both-track
stream to its own WebSocket, which reads and drops the audio. As light as an app can be, so the run measures
the emulator (and shows when the emulator, not the app, is the bottleneck).

    python bench/_loadapp.py WEBHOOK_PORT WS_PORT EMULATOR_URL API_KEY
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection, serve


def main() -> None:
    webhook_port, ws_port, emulator, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    client = httpx.AsyncClient(base_url=f"{emulator}/v2", headers={"Authorization": f"Bearer {key}"})
    answer = {"stream_url": f"ws://127.0.0.1:{ws_port}/", "stream_track": "both_tracks"}

    async def webhook(request: Request) -> Response:
        event = json.loads(await request.body())["data"]
        if event["event_type"] != "call.initiated":
            return Response()
        call_id = event["payload"]["call_control_id"]
        return Response(background=BackgroundTask(client.post, f"/calls/{call_id}/actions/answer", json=answer))

    async def sink(ws: ServerConnection) -> None:
        async for _ in ws:
            pass

    async def run() -> None:
        app = Starlette(routes=[Route("/webhooks", webhook, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=webhook_port, log_level="warning", access_log=False)
        async with serve(sink, "127.0.0.1", ws_port, max_size=None):
            await uvicorn.Server(config).serve()

    asyncio.run(run())


if __name__ == "__main__":
    main()
