"""An unmodified Node app (axios, a hard-coded https://api.telnyx.com) reaches the emulator with HTTPS_PROXY
alone: axios sends an https:// URL to an http:// proxy in absolute form, which the emulator serves."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.sdk.test_node_sdk import node_sdk
from tests.servers import emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.node]

APP = Path(__file__).resolve().parents[1] / "apps" / "hardcoded_axios.cjs"


async def test_an_unmodified_axios_app_dials_through_the_proxy(tmp_path):
    modules = node_sdk()
    async with run_emulator(emulator_settings(cert_dir=tmp_path), proxy=True) as emulator:
        env = {**os.environ, "NODE_PATH": str(modules), "HTTPS_PROXY": emulator.url, "TELNYX_API_KEY": "test-key"}
        for name in ("NO_PROXY", "no_proxy"):
            env.pop(name, None)
        app = await asyncio.create_subprocess_exec(
            "node", str(APP), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(app.communicate(), timeout(30))
        assert app.returncode == 0, err.decode()
        call_id = out.decode().strip()
        assert call_id.startswith("v3:") and call_id in emulator.store().calls
