"""The complete tests of the pages of docs/ for each family of actions (gather, transcription, answering machine
detection, AI, SIP) pass as written, with the pytest plugin and the official SDK, exactly as a user would run them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy
import pytest
import telnyx

import emulator.app
import emulator.testing

pytest_plugins = ["pytester"]

# What the pages' tests import, loaded once before them: pytester drops the modules an in-process run imported, and
# numpy and the Rust extensions under jsonschema and pydantic cannot be loaded twice in one process.
PRELOADED = (emulator.app, emulator.testing, numpy, telnyx)

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = {
    "gather.md": "test_ivr_menu.py",
    "transcription.md": "test_transcribed_call.py",
    "answering-machine-detection.md": "test_voicemail.py",
    "bridging.md": "test_warm_transfer.py",
    "ai.md": "test_ai_gather.py",
    "sip.md": "test_siprec.py",
    "pay.md": "test_payment.py",
    "metrics.md": "test_bot_timing.py",
    "faults.md": "test_sdk_retries.py",
}


def test_files(page: str) -> dict[str, str]:
    """Every ```python block of ``page`` whose first line names a test file: ``# test_x.py``."""
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(# (test_\w+\.py)\n.*?)```", text, flags=re.DOTALL)
    return {name: code for code, name in blocks}


test_files.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_pages_complete_test_passes_as_written(pytester, page):
    files = test_files(page)
    assert set(files) == {PAGES[page]}
    pytester.makepyfile(**{name.removesuffix(".py"): code for name, code in files.items()})
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=1)
