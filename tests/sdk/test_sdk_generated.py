"""The official Python SDK's own generated tests for calls, run against the emulator.

telnyx-python's source distribution carries the tests Stainless generates from Telnyx's OpenAPI spec:
``tests/api_resources/calls/test_actions.py`` (every call action) and ``tests/api_resources/test_calls.py``
(dial, status), each with loose and strict response validation, sync, async, and async over aiohttp. They are
written for a mock server and ship skipped ("Mock server tests are disabled"). This test fetches the sdist of
the installed SDK into ``.cache/sdist`` (git-ignored), extracts those files, removes the skip markers and runs
them in a subprocess pytest with ``TEST_API_BASE_URL`` pointed at a real emulator.

Every test must reach an action the emulator performs (no 404, 405 or 501), and every failure must be one of
``EXPECTED_FAILURES``, with exactly the problems listed there. docs/sdk-generated-tests.md says how to run
them by hand and why each expected failure is right.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("telnyx")
pytest.importorskip("pytest_asyncio")  # the SDK's conftest imports it
pytest.importorskip("httpx_aiohttp")  # the async tests' third client, DefaultAioHttpClient

pytestmark = [pytest.mark.sdk, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "sdist"
VERSION = importlib.metadata.version("telnyx")  # the tests must match the installed SDK's code
# What the two test modules import, relative to the sdist's top folder.
TEST_FILES = (
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/utils.py",
    "tests/api_resources/__init__.py",
    "tests/api_resources/calls/__init__.py",
    "tests/api_resources/test_calls.py",
    "tests/api_resources/calls/test_actions.py",
)
SKIP_MARKER = re.compile(r'^[ \t]*@pytest\.mark\.skip\(reason="Mock server tests are disabled"\)[ \t]*\n', re.M)
# The key the SDK's conftest hard-codes: the emulator takes any key, and the key names the namespace to reset.
SDK_API_KEY = "My API Key"
# The tests are written for a mock that keeps no state, but they all use one made-up id ("call_control_id") and
# one command_id: reset the namespace before each test, so none meets the call an earlier test hung up, or is
# answered from the command_id memory of an earlier one.
RESET_CONFTEST = """\
import os

import httpx
import pytest


@pytest.fixture(autouse=True)
def _fresh_emulator_namespace():
    url = os.environ["EMULATOR_URL"] + "/_emulator/reset"
    headers = {"Authorization": "Bearer " + os.environ["EMULATOR_API_KEY"] + os.environ.get("PYTEST_XDIST_WORKER", "")}
    httpx.post(url, headers=headers, timeout=10).raise_for_status()
"""
# The SDK's own pytest settings, less "-n auto" (two workers are asked for on the command line).
PYTEST_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
xfail_strict = true
"""

# The action part of a test's name (test_method_X, test_raw_response_X, test_streaming_response_X; every
# parameter, sync and async) -> the problems each of its tests fails with, exactly, as "<code> <pointer>"
# ("-": no pointer), and why that is right. Only what Telnyx too refuses of the SDK's placeholder ids and
# values belongs here; an action not emulated (501) never does. docs/sdk-generated-tests.md quotes the spec.
STATE = "call state: "  # the made-up call is answered, but does not run what the test stops or joins
VALUE = "placeholder value: "  # the placeholder request breaks a rule the spec states in words
EXPECTED_FAILURES: dict[str, tuple[frozenset[str], str]] = {
    name: (frozenset(problems), reason)
    for name, problems, reason in (
        ("pause_recording", ["10015 -"], STATE + "the call is not being recorded"),
        ("resume_recording", ["10015 -"], STATE + "the call is not being recorded"),
        ("stop_recording", ["10015 -"], STATE + "the call is not being recorded"),
        ("pause_recording_with_all_params", ["10015 /recording_id"], STATE + "no recording has that recording_id"),
        ("resume_recording_with_all_params", ["10015 /recording_id"], STATE + "no recording has that recording_id"),
        ("stop_recording_with_all_params", ["10015 /recording_id"], STATE + "no recording has that recording_id"),
        ("stop_forking", ["10015 -"], STATE + "the call is not being forked"),
        ("stop_forking_with_all_params", ["10015 -"], STATE + "the call is not being forked"),
        ("stop_transcription", ["10015 -"], STATE + "the call is not being transcribed"),
        ("stop_transcription_with_all_params", ["10015 -"], STATE + "the call is not being transcribed"),
        ("stop_siprec", ["10015 -"], STATE + "the call has no SIPREC session"),
        ("stop_siprec_with_all_params", ["10015 -"], STATE + "the call has no SIPREC session"),
        ("stop_streaming", ["90048 -"], STATE + "the call has no stream (Telnyx's 90048)"),
        ("stop_streaming_with_all_params", ["90048 -"], STATE + "the call has no stream (Telnyx's 90048)"),
        ("stop_ai_assistant", ["10015 -"], STATE + "the call runs no AI assistant"),
        ("stop_ai_assistant_with_all_params", ["10015 -"], STATE + "the call runs no AI assistant"),
        ("add_ai_assistant_messages", ["10015 -"], STATE + "the call runs no AI assistant"),
        ("add_ai_assistant_messages_with_all_params", ["10015 -"], STATE + "the call runs no AI assistant"),
        ("join_ai_assistant", ["10015 /conversation_id"], STATE + "no AI assistant conversation has that id"),
        ("join_ai_assistant_with_all_params", ["10015 /conversation_id"], STATE + "no conversation has that id"),
        ("stop_conversation_relay", ["10015 -"], STATE + "the call runs no Conversation Relay"),
        ("stop_conversation_relay_with_all_params", ["10015 -"], STATE + "the call runs no Conversation Relay"),
        ("leave_queue", ["10015 -"], STATE + "the call waits in no queue"),
        ("leave_queue_with_all_params", ["10015 -"], STATE + "the call waits in no queue"),
        ("dial", ["10016 /to"], VALUE + "to '+18005550100 or sip:...' is neither a number nor a SIP URI"),
        ("transfer", ["10016 /to"], VALUE + "to '+18005550100 or sip:...' is neither a number nor a SIP URI"),
        ("dial_with_all_params", ["10015 -", "10016 /to"], VALUE + "audio_url with media_name; the same to"),
        ("transfer_with_all_params", ["10015 -", "10016 /to"], VALUE + "audio_url with media_name; the same to"),
        ("start_streaming", ["10004 /stream_url"], VALUE + "neither stream_url nor Dialogflow: nowhere to stream"),
        ("start_playback", ["10004 /audio_url"], VALUE + "no audio_url, media_name or playback_content"),
        ("start_playback_with_all_params", ["10015 /media_name"], VALUE + "audio_url, media_name and content"),
        ("gather_using_audio", ["10004 /audio_url"], VALUE + "neither audio_url nor media_name"),
        ("start_forking", ["10004 /rx"], VALUE + "neither target nor rx/tx: nowhere to fork to"),
        ("start_conversation_relay", ["10004 /url"], VALUE + "no url, conversation_relay_url or settings url"),
        ("speak_with_all_params", ["10015 /loop"], VALUE + "loop 'string' is neither a count nor 'infinity'"),
        ("bridge_with_all_params", ["10015 /video_room_id"], VALUE + "video_room_id with call_control_id"),
        ("pay_with_all_params", ["10015 /valid_card_types"], VALUE + "valid_card_types with payment_token"),
    )
}
# Actions the SDK has that the emulator does not perform yet, each with why: their tests answer 501 and are
# reported, not failed. Empty it as they land (docs/sdk-generated-tests.md).
NOT_YET_EMULATED: dict[str, str] = {}
TEST_PREFIX = re.compile(r"^test_(method|raw_response|streaming_response)_")
API_ERROR = re.compile(r"Error code: (\d{3}) - (\{.*\})\s*$", re.M)


def sdist() -> Path:
    """The installed SDK's sdist in ``.cache/sdist``, downloaded on first use; skips when that cannot be done."""
    archive = CACHE / f"telnyx-{VERSION}.tar.gz"
    if archive.exists():
        return archive
    if os.environ.get("EMULATOR_TEST_SKIP_DOWNLOAD") == "1":
        pytest.skip("EMULATOR_TEST_SKIP_DOWNLOAD=1")
    CACHE.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet", "--no-deps"]
    command += ["--no-binary", ":all:", "--retries", "1", "--timeout", "15", "-d", str(CACHE), f"telnyx=={VERSION}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip download telnyx=={VERSION} took over 180 s")
    if result.returncode != 0 or not archive.exists():
        pytest.skip(f"pip download telnyx=={VERSION} failed: {(result.stderr or result.stdout).strip()[-500:]}")
    return archive


def extract_tests(archive: Path, into: Path) -> None:
    """Write the SDK's call tests under ``into`` with their skip markers removed, and the run's config."""
    top = f"telnyx-{VERSION}/"
    with tarfile.open(archive) as tar:
        for name in TEST_FILES:
            member = tar.extractfile(top + name)
            assert member is not None, f"{name} is missing from {archive.name}"
            text = member.read().decode()
            if name == "tests/conftest.py":
                assert f'api_key = "{SDK_API_KEY}"' in text, "the SDK's tests no longer use the key the reset uses"
                # One namespace per pytest-xdist worker: each resets only its own calls, so the workers run apart.
                worker_key = f'api_key = "{SDK_API_KEY}" + __import__("os").environ.get("PYTEST_XDIST_WORKER", "")'
                text = text.replace(f'api_key = "{SDK_API_KEY}"', worker_key, 1)
            if name.endswith("/test_calls.py") or name.endswith("/test_actions.py"):
                text, removed = SKIP_MARKER.subn("", text)
                assert removed and "Mock server tests are disabled" not in text, f"{name}: skip markers changed"
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    (into / "conftest.py").write_text(RESET_CONFTEST)
    (into / "pytest.ini").write_text(PYTEST_INI)


def run_generated_tests(folder: Path, emulator_url: str, timeout: float = 900) -> dict[str, str | None]:
    """Run the extracted tests against ``emulator_url``: ``{"TestActions::test_x[strict]": failure or None}``."""
    report = folder / "junit.xml"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # their `tests`, not ours
    env |= {"TEST_API_BASE_URL": f"{emulator_url}/v2", "EMULATOR_URL": emulator_url, "EMULATOR_API_KEY": SDK_API_KEY}
    # Two workers (pytest-xdist), each with its own API key and so its own namespace: about half the time.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:telnyx_emulator", "-n", "2"]
    command += ["--tb=short", "--junitxml", str(report), "tests"]
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
    assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    outcomes: dict[str, str | None] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rpartition('.')[2]}::{case.get('name')}"
        problem = next((case.find(tag) for tag in ("failure", "error", "skipped") if case.find(tag) is not None), None)
        # The attribute is cut short; the element's text is the whole report.
        outcomes[name] = None if problem is None else f"{problem.tag}: {problem.text or problem.get('message')}"
    return outcomes


def action_of(name: str) -> str:
    """``TestAsyncActions::test_raw_response_answer[aiohttp]`` -> ``answer``."""
    return TEST_PREFIX.sub("", name.partition("::")[2].partition("[")[0])


def api_error(report: str) -> tuple[int, frozenset[str]] | None:
    """The status and the "<code> <pointer>" problems of the Telnyx error a failed test raised, if it was one."""
    found = API_ERROR.search(report)
    if found is None:
        return None
    errors = ast.literal_eval(found[2])["errors"]  # the SDK's message holds the body as a Python literal
    return int(found[1]), frozenset(f"{e['code']} {e.get('source', {}).get('pointer', '-')}" for e in errors)


def summary(report: str) -> str:
    error = api_error(report)
    return f"{error[0]} {sorted(error[1])}" if error else report.strip().splitlines()[-1][:300]


def by_action(reports: dict[str, str]) -> str:
    """One line per action and way of failing: how many of its tests failed so, and one of their names."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, report in sorted(reports.items()):
        groups.setdefault((action_of(name), summary(report)), []).append(name)
    lines = (f"  {action}: {len(names)} tests ({names[0]}, ...): {how}" for (action, how), names in groups.items())
    return "\n".join(lines)


@pytest.mark.telnyx_emulator(scenario="stay-on-line")  # a made-up call never ends by itself mid-test
def test_the_sdks_generated_call_tests_reach_every_action(telnyx_emulator, tmp_path):
    extract_tests(sdist(), tmp_path)
    outcomes = run_generated_tests(tmp_path, telnyx_emulator.url)
    assert len(outcomes) > 1000, f"only {len(outcomes)} tests ran"  # 1055 in telnyx 4.189.0

    failed = {name: report for name, report in outcomes.items() if report is not None}
    not_yet = {name for name in failed if action_of(name).removesuffix("_with_all_params") in NOT_YET_EMULATED}
    assert all((api_error(failed[name]) or (0,))[0] == 501 for name in not_yet), "a not-yet action answered otherwise"
    failed = {name: report for name, report in failed.items() if name not in not_yet}
    missing = {name: report for name, report in failed.items() if (api_error(report) or (0,))[0] in (404, 405, 501)}
    unexpected = {
        name: report
        for name, report in failed.items()
        if name not in missing
        and (
            action_of(name) not in EXPECTED_FAILURES
            or (api_error(report) or (0, None))[1] != EXPECTED_FAILURES[action_of(name)][0]
        )
    }
    problems = [f"actions the emulator does not perform:\n{by_action(missing)}"] if missing else []
    problems += [f"unexpected failures:\n{by_action(unexpected)}"] if unexpected else []
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    # Strict, like xfail_strict: an expected failure that now passes must leave the list (and the docs).
    passed = {action_of(name) for name, report in outcomes.items() if report is None}
    assert not passed & EXPECTED_FAILURES.keys(), f"expected to fail, but passed: {passed & EXPECTED_FAILURES.keys()}"
