"""docs/scaling.md's commands run as written: the two ways to start the emulator with media workers (on a free
port), a stream through the workers, Ctrl-C; and the benchmark commands name flags the script has."""

from __future__ import annotations

import asyncio
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_scenario_docs import commands, sections
from tests.e2e.test_shutdown import emulator_process, start_stream
from tests.servers import WsReceiver, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "scaling.md"
LINES = [line for _, lang, code in sections(PAGE) if lang == "sh" for line in commands(code)]
SERVES = [shlex.split(line, comments=True) for line in LINES if line.startswith("telnyx-emulator serve")]
BENCHES = [shlex.split(line, comments=True) for line in LINES if "bench/concurrency.py" in line]


def test_the_page_has_the_commands_this_test_runs():
    assert [words[2:] for words in SERVES] == [["--media-workers", "4"], ["--media-workers", "auto"]]
    assert len(BENCHES) == 1


@pytest.mark.parametrize("words", SERVES, ids=lambda words: " ".join(words[2:]))
async def test_each_way_to_start_it_streams_and_stops_cleanly(words):
    async with WsReceiver().running() as target:
        async with emulator_process(*words[2:]) as (process, url):
            await start_stream(url, target.url, "v3:scaled")
            await target.wait_for(lambda: bool(target.connections and target.connections[0].of("media")))
            process.send_signal(signal.SIGINT)
            async with asyncio.timeout(timeout(10)):
                assert await process.wait() == 0
    conn = await target.wait_closed()
    assert conn.events()[-1] == "stop" and conn.close_code == 1000


@pytest.mark.parametrize("words", BENCHES, ids=lambda words: " ".join(words[2:]))
def test_the_benchmark_commands_name_flags_the_script_has(words):
    script = ROOT / words[1]
    shown = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, check=True).stdout
    for word in words[2:]:
        if word.startswith("--"):
            assert word in shown, word
