"""refer: call.refer.started at once, then the far end's answer as its scenario says: completed (and the call
ends) or failed (and the call goes on)."""

from __future__ import annotations

import httpx
import pytest

from tests.receivers import WebhookReceiver
from tests.servers import emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"


def kinds(hooks: WebhookReceiver) -> list[str]:
    return [r.event_type for r in hooks.requests]


def payload(hooks: WebhookReceiver, event_type: str) -> dict:
    return next(r.json["data"]["payload"] for r in hooks.requests if r.event_type == event_type)


@pytest.mark.parametrize(
    ("refer", "ending", "status", "hangs_up"),
    [
        ("", "call.refer.completed", 200, True),
        ("refer: {accept: false, notify: 486}\n", "call.refer.failed", 486, False),
    ],
)
async def test_the_far_end_follows_or_refuses_the_refer_as_its_scenario_says(tmp_path, refer, ending, status, hangs_up):
    (tmp_path / "far.yaml").write_text(refer + "at_end: stay\ninbound:\n  - silence: {ms: 100}\n")
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=8)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                created = await c.post(
                    "/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": str(tmp_path / "far.yaml")}
                )
                actions = f"/v2/calls/{created.json()['data']['call_control_id']}/actions"
                early = await c.post(f"{actions}/refer", json={"sip_address": "sip:agent@example.com"})
                assert early.json()["errors"][0]["code"] == "90034"  # not answered yet
                await c.post(f"{actions}/answer", json={})
                bad = await c.post(f"{actions}/refer", json={"sip_address": "agent@example.com"})
                assert bad.json()["errors"][0]["source"] == {"pointer": "/sip_address"}
                body = {"sip_address": "sip:agent@example.com", "sip_auth_password": "s3cret", "client_state": "cmVm"}
                assert (await c.post(f"{actions}/refer", json=body)).json() == {"data": {"result": "ok"}}
                await hooks.wait_until(lambda: ending in kinds(hooks), seconds=10)
                if hangs_up:
                    await hooks.wait_until(lambda: "call.hangup" in kinds(hooks), seconds=5)
                else:
                    assert (await c.post(f"{actions}/hangup", json={})).status_code == 200  # the call went on
                journal = (await c.get("/_emulator/commands", params={"status": "200"})).json()["data"]
    assert payload(hooks, "call.refer.started")["sip_notify_response"] == 100
    answered = payload(hooks, ending)
    assert answered["sip_notify_response"] == status and answered["client_state"] == "cmVm"
    order = kinds(hooks)
    assert order.index("call.refer.started") < order.index(ending) < order.index("call.hangup")
    hangup = payload(hooks, "call.hangup")
    assert hangup["hangup_source"] == ("caller" if hangs_up else "callee")
    assert all(e["body"].get("sip_auth_password") in (None, "***") for e in journal if isinstance(e["body"], dict))
