"""docs/texml.md's shell examples run as written, by tests/e2e/test_scenario_docs.py's machinery: each ``sh``
block against a real emulator (its serve line starts one); a block followed by a ``text`` block must print it."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from tests.e2e.test_scenario_docs import missing_tools, run_block, sandbox, sections

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "texml.md"
BLOCKS = [(lang, code) for _, lang, code in sections(PAGE)]
RUNNABLE = [code for lang, code in BLOCKS if lang == "sh" and "telnyx-emulator " in code]
OUTPUTS = {code: after for (lang, code), (next_lang, after) in pairwise(BLOCKS) if (lang, next_lang) == ("sh", "text")}


def test_the_page_has_a_runnable_example_with_its_output():
    assert RUNNABLE and all(block in OUTPUTS for block in RUNNABLE)


@pytest.mark.parametrize("block", RUNNABLE)
async def test_shell_example_runs(tmp_path, monkeypatch, block):
    missing = missing_tools(block)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    cwd = sandbox(tmp_path, PAGE, ())
    monkeypatch.chdir(cwd)
    printed = await run_block(block, cwd)
    assert printed.rstrip().endswith(OUTPUTS[block].rstrip()), printed
