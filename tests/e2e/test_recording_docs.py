"""docs/recording.md's shell example runs as written, by tests/e2e/test_scenario_docs.py's machinery.

Each ``sh`` block runs in a scratch copy of the repository's top folder against a real emulator (its serve line
starts one); a block followed by ```` ```text ```` is the output its last command prints, and must be. The page's
field tables are the schemas' fields.
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import pytest

from emulator.api.schemas import default_schema_dir
from tests.e2e.test_scenario_docs import commands, run_example, sections

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "recording.md"


def printed_outputs() -> dict[str, str]:
    """For each sh block whose next block (prose aside) is a text block: that text, the output it shows."""
    blocks = [(lang, code) for _, lang, code in sections(PAGE)]
    return {code: after for (lang, code), (next_lang, after) in pairwise(blocks) if (lang, next_lang) == ("sh", "text")}


SH_BLOCKS = [(heading, code) for heading, lang, code in sections(PAGE) if lang == "sh"]
OUTPUTS = printed_outputs()


def test_the_page_records_a_call_and_fetches_the_file_without_a_key():
    shown = "\n".join(block for _, block in SH_BLOCKS)
    assert "/actions/record_start" in shown and "/actions/record_stop" in shown and "/_emulator/webhooks" in shown
    fetches = [line for _, block in SH_BLOCKS for line in commands(block) if "/_emulator/call-recordings/" in line]
    assert fetches and all("Authorization" not in line for line in fetches)  # the links need no key
    assert all("sleep" not in block or "for i in $(seq" in block for _, block in SH_BLOCKS)  # waits poll, bounded
    assert len(OUTPUTS) == len(SH_BLOCKS)


def _table_fields(heading: str) -> set[str]:
    """The fields of the first table after ``heading``: the first column's backticked names."""
    text = PAGE.read_text()
    section = text[text.index(heading) :]
    table = re.search(r"^\| field \|.*?\n((?:\|.*\n)+)", section, flags=re.MULTILINE)
    assert table is not None, heading
    return set(re.findall(r"^\| `(\w+)` \|", table[1], flags=re.MULTILINE))


def _schema_fields(action: str) -> set[str]:
    return set(json.loads((default_schema_dir() / f"{action}.schema.json").read_text())["properties"])


def test_the_field_tables_are_the_schemas():
    assert _table_fields("## `record_start`") == _schema_fields("record_start")
    stop = _table_fields("## `record_stop`, `record_pause` and `record_resume`")
    assert stop == _schema_fields("record_stop") == _schema_fields("record_pause") == _schema_fields("record_resume")


@pytest.mark.parametrize(("heading", "block"), SH_BLOCKS, ids=[f"{i}-{h}" for i, (h, _) in enumerate(SH_BLOCKS)])
async def test_shell_example_runs(tmp_path, monkeypatch, heading, block):
    printed = await run_example(tmp_path, monkeypatch, PAGE, block)
    if block in OUTPUTS:
        assert printed.rstrip().endswith(OUTPUTS[block].rstrip()), printed
