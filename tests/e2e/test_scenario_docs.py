"""docs/scenarios.md's shell examples run as written: each block in a scratch copy of the repository's top folder.

A ``telnyx-emulator`` line that serves starts a real emulator (on a free port, with the flags and variables the
line gives); the other lines run in bash, with the docs' ``http://127.0.0.1:8000`` pointing at that emulator.
The YAML and Python examples are run by tests/unit/test_scenarios.py; tests/e2e/test_playing_audio_docs.py and
tests/e2e/test_recording_docs.py run docs/playing-audio.md's and docs/recording.md's shell examples with these same
helpers.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from emulator import cli
from emulator.scenarios.loader import default_scenario_dir
from tests.servers import TEST_SIGNING_KEY, RunningEmulator, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"
DOCS_URL = "http://127.0.0.1:8000"
# The examples name files of the reader's own; these stand in for them.
READERS_FILES = {
    "my-call.yaml": "inbound:\n  - tone: {frequency: 440, ms: 200}\n",
    "my-scenarios/angry-customer.yaml": "inbound:\n  - dtmf: {digits: '0'}\n  - hangup: {}\n",
}
# Files the docs give in full, as YAML blocks whose first line names them.
DOCS_FILES = ("calls.yaml",)
TOOLS = ("curl", "espeak-ng", "sox")  # outside Python: a block that needs a missing one is skipped
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def sections(path: Path = DOCS) -> Iterator[tuple[str, str, str]]:
    """(heading, language, code) of every fenced block of the page, in order."""
    heading = ""
    for match in re.finditer(r"^(#+ [^\n]*)$|^```(\w*)\n(.*?)^```$", path.read_text(), flags=re.MULTILINE | re.DOTALL):
        if match[1]:
            heading = match[1].lstrip("# ")
        else:
            yield heading, match[2], match[3]


SH_BLOCKS = [(heading, code) for heading, lang, code in sections() if lang == "sh"]


def commands(block: str) -> list[str]:
    """The block's commands, each on one line (backslash continuations joined)."""
    return [line for line in re.sub(r"\\\n\s*", " ", block).splitlines() if line.strip()]


def serve_args(command: str) -> tuple[dict[str, str], list[str]] | None:
    """For a line that starts a server: its variables and its flags; None for any other command."""
    words = shlex.split(command, comments=True)
    env = {}
    while words and ASSIGNMENT.match(words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    if not words or words[0] != "telnyx-emulator" or (len(words) > 1 and words[1] in ("call", "scenario")):
        return None
    return env, [arg for arg in words[1:] if arg != "serve"]


def sandbox(tmp_path: Path, path: Path = DOCS, docs_files: tuple[str, ...] = DOCS_FILES) -> Path:
    """A scratch copy of the repository's top folder as the examples of the page at ``path`` see it."""
    shutil.copytree(default_scenario_dir(), tmp_path / "scenarios")
    for name, text in READERS_FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for _, lang, code in sections(path):
        first = code.split("\n", 1)[0]
        if lang == "yaml" and first.startswith("# ") and first[2:] in docs_files:
            (tmp_path / first[2:]).write_text(code)
    return tmp_path


async def start(stack: AsyncExitStack, env: dict[str, str], flags: list[str]) -> RunningEmulator:
    args = cli.build_parser().parse_args(["serve", *flags])
    # Settings as the command line makes them; the test's own key, so no key file is written to the home folder,
    # and the CA folder the block's own `telnyx-emulator ca` uses (its HOME is the sandbox's, see run_bash).
    settings = cli.settings_from_args(args, env).replace(signing_key=TEST_SIGNING_KEY, speed=0)
    if "TELNYX_EMULATOR_CERT_DIR" not in env:
        settings = settings.replace(cert_dir=Path.cwd() / "home" / ".telnyx-emulator")
    return await stack.enter_async_context(run_emulator(settings, proxy=not settings.disable_proxy))


async def run_bash(script: str, cwd: Path, url: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELNYX_")}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # this telnyx-emulator
        "HOME": str(cwd / "home"),
        "TELNYX_EMULATOR_TTS_CACHE": str(cwd / "tts"),
    }
    if url is not None:
        env["TELNYX_EMULATOR_URL"] = url  # `telnyx-emulator call` goes to DOCS_URL by default
        script = script.replace(DOCS_URL, url)
    proc = await asyncio.create_subprocess_exec(
        "bash", "-eo", "pipefail", "-c", script, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout(120))
    assert proc.returncode == 0, f"{script}\nexit status {proc.returncode}\n{err.decode()}"
    return out.decode()


def test_the_docs_have_shell_examples_for_every_way_to_choose_a_scenario():
    chosen = "\n".join(code for heading, code in SH_BLOCKS if heading != "Checking and hearing scenarios")
    assert "--scenario ivr-menu" in chosen and "TELNYX_EMULATOR_SCENARIO=" in chosen
    assert '"scenario": "ivr-menu"' in chosen and "telnyx-emulator call" in chosen
    assert "--scenario-map calls.yaml" in chosen
    assert "-X PUT" in chosen and "/scenario" in chosen


def missing_tools(block: str) -> list[str]:
    return [tool for tool in TOOLS if re.search(rf"(^|[\s|(]){tool}\s", block) and not shutil.which(tool)]


async def run_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: Path, block: str, files: tuple[str, ...] = ()
) -> str:
    """Run a page's shell block as a reader would, in a sandbox holding the page's files (skipped when a tool it
    needs is not installed). The sandbox is the working folder too: servers started in this process resolve the
    examples' relative paths there. Returns what bash printed."""
    missing = missing_tools(block)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    cwd = sandbox(tmp_path, page, files)
    monkeypatch.chdir(cwd)
    return await run_block(block, cwd)


async def run_block(block: str, cwd: Path, check: Callable[[RunningEmulator], None] | None = None) -> str:
    """Run a shell block in ``cwd``: its serve lines start emulators, the rest runs in bash against the latest one
    (one on the defaults if the block talks to a server without starting one). ``check`` sees the last emulator
    before it stops. Returns what bash printed."""
    talks_to_a_server = DOCS_URL in block or "telnyx-emulator call" in block
    printed: list[str] = []
    async with AsyncExitStack() as stack:
        emulator: RunningEmulator | None = None
        pending: list[str] = []
        for command in [*commands(block), None]:
            served = serve_args(command) if command is not None else None
            if pending and (command is None or served is not None):
                if emulator is None and talks_to_a_server:
                    emulator = await start(stack, {}, [])  # the examples' emulator on its defaults
                out = await run_bash("\n".join(pending), cwd, emulator.url if emulator is not None else None)
                assert '"errors"' not in out, out
                printed.append(out)
                pending = []
            if served is not None:
                await stack.aclose()
                emulator = await start(stack, *served)
                assert Path(emulator.state.library.default).stem in f"{command} default"  # its --scenario, if any
            elif command is not None:
                pending.append(command)
        if emulator is not None and check is not None:
            check(emulator)
    return "".join(printed)


@pytest.mark.parametrize(("heading", "block"), SH_BLOCKS, ids=[f"{i}-{h}" for i, (h, _) in enumerate(SH_BLOCKS)])
async def test_shell_example_runs(tmp_path, monkeypatch, heading, block):
    missing = missing_tools(block)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    cwd = sandbox(tmp_path)
    monkeypatch.chdir(cwd)  # the servers started in this process resolve the examples' relative paths here
    talks_to_a_server = DOCS_URL in block or "telnyx-emulator call" in block

    def scenarios_stuck(emulator: RunningEmulator) -> None:
        # Whatever the block did to choose a scenario, it stuck: every call it made has one that the block (or
        # the map it serves) names.
        named = block + "".join((cwd / name).read_text() for name in DOCS_FILES)
        calls = [call for namespace in emulator.state.namespaces for call in namespace.store.calls.values()]
        assert calls or not talks_to_a_server, heading
        for call in calls:
            assert call.scenario is not None and Path(call.scenario).stem in named, (heading, call.scenario)

    await run_block(block, cwd, scenarios_stuck)
