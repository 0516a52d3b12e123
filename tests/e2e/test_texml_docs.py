"""docs/texml.md's shell examples run as written, by tests/e2e/test_scenario_docs.py's machinery: each ``sh``
block against a real emulator (its serve line starts one); a block followed by a ``text`` block must print it."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from tests.e2e.test_scenario_docs import run_example, sections

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "texml.md"
BLOCKS = [(lang, code) for _, lang, code in sections(PAGE)]
RUNNABLE = [code for lang, code in BLOCKS if lang == "sh" and "telnyx-emulator " in code]
OUTPUTS = {code: after for (lang, code), (next_lang, after) in pairwise(BLOCKS) if (lang, next_lang) == ("sh", "text")}


def test_the_page_has_a_runnable_example_with_its_output():
    assert RUNNABLE and all(block in OUTPUTS for block in RUNNABLE)


@pytest.mark.parametrize("block", RUNNABLE)
async def test_shell_example_runs(tmp_path, monkeypatch, block):
    printed = await run_example(tmp_path, monkeypatch, PAGE, block)
    assert printed.rstrip().endswith(OUTPUTS[block].rstrip()), printed
