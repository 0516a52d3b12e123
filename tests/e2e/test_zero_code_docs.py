"""docs/zero-code.md's shell example runs as written, by tests/e2e/test_scenario_docs.py's machinery: curl
through the emulator's proxy reaches it as api.telnyx.com, and another host is refused."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from tests.e2e.test_scenario_docs import run_example, sections

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "zero-code.md"
BLOCKS = [(lang, code) for _, lang, code in sections(PAGE)]
SH_BLOCKS = [code for lang, code in BLOCKS if lang == "sh"]
OUTPUTS = {code: after for (lang, code), (next_lang, after) in pairwise(BLOCKS) if (lang, next_lang) == ("sh", "text")}


@pytest.mark.parametrize("block", SH_BLOCKS, ids=[f"block-{i}" for i in range(len(SH_BLOCKS))])
async def test_shell_example_runs(tmp_path, monkeypatch, block):
    printed = await run_example(tmp_path, monkeypatch, PAGE, block)
    assert printed.rstrip().endswith(OUTPUTS[block].rstrip()), printed
