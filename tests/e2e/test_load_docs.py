"""docs/load.md's example runs as written: the example voice bot in one shell, ``telnyx-emulator load`` against
it in another (ports moved to free ones, and the report written to a scratch folder)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

from emulator.load.command import free_port
from tests.e2e.test_scenario_docs import sections
from tests.servers import timeout

pytest.importorskip("telnyx")  # the example bot uses the official SDK
pytest.importorskip("matplotlib")  # the example writes the report
pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.sdk]

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "load.md"
BLOCKS = [(lang, code) for _, lang, code in sections(PAGE)]
APP, LOAD = (code for lang, code in BLOCKS if lang == "sh")
PRINTED = next(code for lang, code in BLOCKS if lang == "text" and code.startswith("10 calls"))


def scratch(tmp_path: Path) -> dict[str, str]:
    """A folder that looks like the repository root to the example (its .venv and examples/), with a home of its
    own: the bot and the load's emulator share the signing key kept there."""
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELNYX_")}
    return env | {"HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_the_load_example_runs_as_written(tmp_path):
    env = scratch(tmp_path)
    emulator_port, app_port = free_port(), free_port()

    def moved(block: str) -> str:
        return block.replace("8000", str(emulator_port)).replace("9000", str(app_port))

    with (tmp_path / "app.log").open("wb") as log:
        app = await asyncio.create_subprocess_exec(
            "bash", "-c", moved(APP), cwd=tmp_path, env=env, start_new_session=True,
            stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        async with asyncio.timeout(timeout(20)):
            while not listening(app_port):
                await asyncio.sleep(0.05)  # the bot's uvicorn gives no other sign it is up
        load = await asyncio.create_subprocess_exec(  # its emulator's port: from the environment, as serve's is
            "bash", "-c", moved(LOAD), cwd=tmp_path, env=env | {"TELNYX_EMULATOR_PORT": str(emulator_port)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(timeout(90)):
            out, err = await load.communicate()
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        await app.wait()
    assert load.returncode == 0, out.decode() + err.decode() + (tmp_path / "app.log").read_text()
    printed = out.decode()
    # The same table as the page shows: its lines in order, with this run's figures.
    shape = [re.sub(r"[\d.]+", "N", line).split()[:2] for line in PRINTED.splitlines() if line]
    got = [
        re.sub(r"[\d.]+", "N", line.replace(str(emulator_port), "8000")).split()[:2]
        for line in printed.splitlines()
        if line
    ]
    assert got == shape, printed
    assert "errors   none" in printed and "answered 10" in printed
    assert (tmp_path / "load.html").read_text().count("<svg") == 3
