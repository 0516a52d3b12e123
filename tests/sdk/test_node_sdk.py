"""Smoke test: the official Node SDK (npm ``telnyx``) drives the emulator too.

The package is installed once into ``.cache/node`` (git-ignored) and reused. Skipped, with the reason,
when node or npm is missing or the install fails; ``EMULATOR_TEST_SKIP_NODE=1`` opts out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sdk, pytest.mark.node]

NODE_SDK = "telnyx@7.24.0"  # pinned, so a new SDK release cannot break the suite unannounced
AXIOS = "axios@1.7.9"  # what many apps that hard-code api.telnyx.com call it with (tests/sdk/test_node_zero_code.py)
NODE_PACKAGES = (NODE_SDK, AXIOS)
ROOT = Path(__file__).resolve().parents[2]
PREFIX = ROOT / ".cache" / "node"
SCRIPT = Path(__file__).with_name("node_smoke.cjs")


def node_sdk() -> Path:
    """``node_modules`` holding the pinned SDK and axios, installing them on first use; skips when that cannot be
    done."""
    if os.environ.get("EMULATOR_TEST_SKIP_NODE") == "1":
        pytest.skip("EMULATOR_TEST_SKIP_NODE=1")
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the Node SDK smoke test")
    modules = PREFIX / "node_modules"

    def installed() -> bool:
        for package in NODE_PACKAGES:
            name, version = package.split("@")
            manifest = modules / name / "package.json"
            if not manifest.exists() or json.loads(manifest.read_text())["version"] != version:
                return False
        return True

    if installed():
        return modules
    PREFIX.mkdir(parents=True, exist_ok=True)
    # Few, short retries: without a reachable registry npm would otherwise retry for over a minute.
    retries = ["--fetch-retries=1", "--fetch-retry-mintimeout=1000", "--fetch-retry-maxtimeout=3000"]
    command = [
        npm,
        "install",
        "--prefix",
        str(PREFIX),
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        *retries,
        *NODE_PACKAGES,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {' '.join(NODE_PACKAGES)} took over 120 s")
    if result.returncode != 0 or not installed():
        detail = (result.stderr or result.stdout).strip()[-500:]
        pytest.skip(f"npm install {' '.join(NODE_PACKAGES)} failed: {detail}")
    return modules


def test_the_node_sdk_dials_streams_hangs_up_and_verifies_webhooks(telnyx_emulator):
    modules = node_sdk()
    telnyx_emulator.control.incoming_call("+13125550111", "+13125550122")
    hook = telnyx_emulator.wait_for_webhook("call.initiated")
    env = {
        **os.environ,
        "NODE_PATH": str(modules),
        "TELNYX_BASE_URL": telnyx_emulator.api_url,
        "TELNYX_API_KEY": telnyx_emulator.api_key,
        "TELNYX_PUBLIC_KEY": telnyx_emulator.public_key,
        "STREAM_URL": telnyx_emulator.stream_url,
        "WEBHOOK": json.dumps({"body": hook.text, "headers": hook.headers}),
    }
    result = subprocess.run(
        ["node", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["dial"]["call_control_id"].startswith("v3:") and seen["dial"]["is_alive"] is False
    assert seen["start"] == seen["stop"] == seen["hangup"] == {"result": "ok"}
    assert seen["status"]["is_alive"] is False and seen["status"]["call_control_id"] == "v3:node-sdk"
    assert seen["error"] == {"unprocessable": True, "status": 422, "codes": ["10032", "10003"]}
    assert (seen["webhook"], seen["forged"]) == ("call.initiated", "rejected")
    assert telnyx_emulator.wait_for_stream_end().close_code == 1000
