"""The pytest plugin: docs/pytest.md's examples run as written, and the fixture's waits and settings
behave as documented."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from emulator.config import ConfigError
from emulator.testing import ControlPlaneError, TelnyxEmulator

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "pytest.md"
CALLER, APP_NUMBER = "+13125550111", "+13125550122"


def doc_test_files() -> dict[str, str]:
    """Every ```python block of docs/pytest.md whose first line names a test file: ``# test_x.py``."""
    blocks = re.findall(r"```python\n(# (test_\w+\.py)\n.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {name: code for code, name in blocks}


def test_the_examples_in_docs_pytest_md_pass_as_written(pytester):
    files = doc_test_files()
    assert set(files) == {"test_answering.py", "test_async_bot.py", "test_settings.py"}
    pytester.makepyfile(**{name.removesuffix(".py"): code for name, code in files.items()})
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=4)


def test_a_wait_that_times_out_says_what_arrived(telnyx_emulator):
    telnyx_emulator.control.incoming_call(CALLER, APP_NUMBER)
    telnyx_emulator.wait_for_webhook("call.initiated")
    with pytest.raises(TimeoutError, match=r"expected 1 call.hangup webhook\(s\); received call.initiated within"):
        telnyx_emulator.wait_for_webhook("call.hangup", timeout=0.05)
    with pytest.raises(TimeoutError, match="expected stream #0; 0 connection"):
        telnyx_emulator.wait_for_stream(timeout=0.05)


def test_control_plane_errors_raise_with_telnyx_codes(telnyx_emulator):
    with pytest.raises(ControlPlaneError) as info:
        telnyx_emulator.control.incoming_call("123", APP_NUMBER)
    assert info.value.status == 422 and info.value.errors[0]["code"] == "10016"
    with pytest.raises(ControlPlaneError, match="404"):
        telnyx_emulator.control.call("v3:nothing")


@pytest.fixture
def telnyx_emulator_settings():
    return {"scenario": "tone", "speed": 5}


@pytest.mark.telnyx_emulator(speed=0, seed=11)
def test_the_closest_marker_wins_over_the_settings_fixture(telnyx_emulator):
    settings = telnyx_emulator.settings
    assert (settings.scenario, settings.speed, settings.seed) == ("tone", 0, 11)
    assert settings.webhook_url == telnyx_emulator.webhook_url
    first = telnyx_emulator.control.incoming_call(CALLER, APP_NUMBER)
    telnyx_emulator.control.reset()
    assert telnyx_emulator.control.incoming_call(CALLER, APP_NUMBER)["call_control_id"] == first["call_control_id"]


@pytest.mark.anyio
async def test_async_waits_leave_the_event_loop_free(telnyx_emulator):
    call = await telnyx_emulator.acontrol.incoming_call(CALLER, APP_NUMBER)
    hook = await telnyx_emulator.wait_for_webhook_async("call.initiated", call_control_id=call["call_control_id"])
    assert hook.payload["state"] == "parked" and hook.headers["user-agent"] == "telnyx-webhooks"
    assert [c["call_control_id"] for c in await telnyx_emulator.acontrol.calls()] == [call["call_control_id"]]
    assert (await telnyx_emulator.acontrol.reset())["calls"] == 1


def test_every_control_plane_helper_reaches_its_endpoint(telnyx_emulator):
    control = telnyx_emulator.control
    assert control.health() == {"status": "ok"} and control.public_key() == telnyx_emulator.public_key
    call = control.incoming_call(CALLER, APP_NUMBER)
    call_id = call["call_control_id"]
    assert control.set_scenario(call_id, "tone")["scenario"] == "tone"
    assert [c["call_control_id"] for c in control.calls()] == [call_id]
    with httpx.Client(
        base_url=telnyx_emulator.api_url, headers={"Authorization": f"Bearer {telnyx_emulator.api_key}"}
    ) as api:
        assert api.post(f"/calls/{call_id}/actions/answer", json={"stream_url": telnyx_emulator.stream_url}).is_success
    stream_id = telnyx_emulator.wait_for_stream_end().stream_id
    assert stream_id is not None and control.stream(stream_id)["stream_id"] == stream_id
    wav = control.recording(stream_id, "inbound")
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    with pytest.raises(ControlPlaneError, match="404"):
        control.recording(stream_id, "nope")


@pytest.mark.telnyx_emulator(api_keys=frozenset({"KEY-ci"}))
def test_with_api_keys_the_helpers_use_an_accepted_key(telnyx_emulator):
    assert telnyx_emulator.api_key == "KEY-ci"
    assert telnyx_emulator.control.calls() == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"sped": 1}, "sped: no such setting; did you mean 'speed'?"), ({"speed": "10"}, "speed: expected a number")],
)
def test_a_misspelt_or_mistyped_setting_says_which(settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TelnyxEmulator(**settings)
