"""docs/webhooks.md's complete receiver runs as written: a real emulator's webhooks reach it, verify, and are
printed; a forged one is rejected."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_shutdown import free_port
from tests.servers import TEST_SIGNING_KEY, emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.sdk]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def receiver_code() -> str:
    (code,) = re.findall(r"```python\n(# webhook_receiver\.py.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)
    return code


async def read_line(stream: asyncio.StreamReader) -> str:
    return (await asyncio.wait_for(stream.readline(), timeout(20))).decode().strip()


async def test_the_documented_receiver_verifies_and_prints_the_emulators_webhooks(tmp_path):
    (tmp_path / "webhook_receiver.py").write_text(receiver_code())
    port = free_port()
    # `telnyx-emulator public-key` in the receiver reads the same key the emulator below signs with.
    env = {**os.environ, "TELNYX_EMULATOR_SIGNING_KEY": TEST_SIGNING_KEY}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    receiver = await asyncio.create_subprocess_exec(
        sys.executable, "webhook_receiver.py", str(port), cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert receiver.stdout is not None
    try:
        assert await read_line(receiver.stdout) == f"listening on http://127.0.0.1:{port}/webhooks"
        url = f"http://127.0.0.1:{port}/webhooks"
        async with run_emulator(emulator_settings(webhook_url=url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers={"Authorization": "Bearer k"}) as client:
                created = await client.post("/_emulator/calls", json={"from": "+13125550111", "to": "+13125550122"})
                call_id = created.json()["data"]["call_control_id"]
                assert await read_line(receiver.stdout) == f"call.initiated {call_id}"
                forged = await client.post(url, content=b'{"data": {}}', headers={"telnyx-signature-ed25519": "x"})
                assert forged.status_code == 400
                assert (await read_line(receiver.stdout)).startswith("rejected:")
    finally:
        receiver.terminate()
        await receiver.wait()
