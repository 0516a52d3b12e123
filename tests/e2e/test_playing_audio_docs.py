"""docs/playing-audio.md's shell examples run as written, by tests/e2e/test_scenario_docs.py's machinery.

Each ``sh`` block runs in a scratch copy of the repository's top folder against a real emulator (its serve line
starts one); a block followed by ```` ```text ```` is the output its last command prints, and must be. The page's
voice table is clip_audio's.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest

from emulator.media import clip_audio
from tests.e2e.test_scenario_docs import run_example, sections

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "playing-audio.md"
PAGE_FILES = ("wait-for-the-greeting.yaml",)  # YAML blocks of the page that its examples serve


def printed_outputs() -> dict[str, str]:
    """For each sh block whose next block (prose aside) is a text block: that text, the output it shows."""
    blocks = [(lang, code) for _, lang, code in sections(PAGE)]
    return {code: after for (lang, code), (next_lang, after) in pairwise(blocks) if (lang, next_lang) == ("sh", "text")}


SH_BLOCKS = [(heading, code) for heading, lang, code in sections(PAGE) if lang == "sh"]
OUTPUTS = printed_outputs()


def test_the_page_runs_speak_playback_and_send_dtmf_and_shows_their_webhooks():
    shown = "\n".join(block for _, block in SH_BLOCKS)
    assert "/actions/speak" in shown and "/actions/send_dtmf" in shown and "/_emulator/webhooks" in shown
    assert "/actions/playback_start" in shown and "--media-dir" in shown
    assert all("sleep" not in block or "for i in $(seq" in block for _, block in SH_BLOCKS)  # waits poll, bounded
    assert len(OUTPUTS) == len(SH_BLOCKS)
    assert all("call.speak.ended" in output or "call.playback.ended" in output for output in OUTPUTS.values())


def test_the_voice_table_is_the_emulators():
    text = PAGE.read_text()
    table = text[text.index("### Voices") : text.index("### The queue")]
    rows = dict(re.findall(r"`([A-Za-z]+(?:-[A-Za-z]+)*)` \| `([a-z0-9+-]+)`", table))
    assert rows == clip_audio.LANGUAGES
    female = re.search(r"contains one of (.*?) \(in any", table, re.S)
    assert female is not None
    assert set(re.findall(r"`(\w+)`", female[1])) == clip_audio._FEMALE


@pytest.mark.parametrize(("heading", "block"), SH_BLOCKS, ids=[f"{i}-{h}" for i, (h, _) in enumerate(SH_BLOCKS)])
async def test_shell_example_runs(tmp_path, monkeypatch, heading, block):
    printed = await run_example(tmp_path, monkeypatch, PAGE, block, PAGE_FILES)
    if block in OUTPUTS:
        assert printed.rstrip().endswith(OUTPUTS[block].rstrip()), printed
