"""pay: the caller keys a card in, step by step (its scenario's dtmf steps after each prompt); the webhooks say how
each step went and how the emulated connector answered, which test card numbers choose."""

from __future__ import annotations

import httpx
import pytest

from tests.receivers import WebhookReceiver
from tests.servers import emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}


def caller(*entries: str) -> str:
    """A caller who waits for each prompt to end, then keys the next entry in."""
    steps = "".join(
        f"  - wait_for: {{event: speak_end, timeout_ms: 30000}}\n  - dtmf: {{digits: '{keys}', ms: 60, gap_ms: 40}}\n"
        for keys in entries
    )
    return "at_end: stay\ninbound:\n" + steps


def payloads(hooks: WebhookReceiver, event_type: str) -> list[dict]:
    return [r.json["data"]["payload"] for r in hooks.requests if r.event_type == event_type]


async def paid(tmp_path, scenario: str, body: dict) -> tuple[WebhookReceiver, dict]:
    (tmp_path / "payer.yaml").write_text(scenario)
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=8)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                new = {"from": "+13125550111", "to": "+13125550122", "scenario": str(tmp_path / "payer.yaml")}
                call = (await c.post("/_emulator/calls", json=new)).json()["data"]["call_control_id"]
                early = await c.post(f"/v2/calls/{call}/actions/pay", json=body)
                assert early.json()["errors"][0]["code"] == "90034"
                await c.post(f"/v2/calls/{call}/actions/answer", json={})
                assert (await c.post(f"/v2/calls/{call}/actions/pay", json=body)).json() == {"data": {"result": "ok"}}
                again = await c.post(f"/v2/calls/{call}/actions/pay", json=body)
                assert again.status_code == 422  # one payment at a time
                await hooks.wait_until(lambda: bool(payloads(hooks, "call.payment.completed")), seconds=30)
                await c.post(f"/v2/calls/{call}/actions/hangup", json={})
    return hooks, payloads(hooks, "call.payment.completed")[0]


async def test_a_charge_collects_each_step_and_succeeds(tmp_path):
    scenario = caller("4111111111111111#", "1230", "123#", "60601#")
    hooks, done = await paid(tmp_path, scenario, {"amount": 10.5, "client_state": "cGF5"})
    steps = [(p["payment_step"], p["payment_status"]) for p in payloads(hooks, "call.payment.progress")]
    assert steps == [
        ("payment-card-number", "completed"),
        ("expiration-date", "completed"),
        ("security-code", "completed"),
        ("postal-code", "completed"),
        ("payment-processing", "processing"),
    ]
    assert done["result"] == "success" and done["charge_id"].startswith("emu_") and done["client_state"] == "cGF5"
    assert done["payment_card_number"] == "************1111" and done["payment_card_type"] == "visa"
    assert done["expiration_date"] == "1230" and done["security_code"] == "***"
    assert done["payment_card_postal_code"] == "60601" and done["payment_method"] == "credit-card"


async def test_a_bad_number_is_asked_again_and_a_declining_test_card_fails_at_the_connector(tmp_path):
    scenario = caller("1234#", "4000000000000002#", "1230", "123#")
    body = {"amount": 5, "postal_code": "90210", "valid_card_types": ["visa"], "max_attempts": 2}
    hooks, done = await paid(tmp_path, scenario, body)
    first = payloads(hooks, "call.payment.progress")[0]
    assert (first["payment_step"], first["payment_status"], first["error_type"], first["attempt"]) == (
        "payment-card-number",
        "failed",
        "invalid-card-number",
        1,
    )
    assert done["result"] == "payment-connector-error" and done["pay_error_code"] == "card_declined"
    assert done["payment_card_postal_code"] == "90210"  # given, not asked


async def test_errors_point_at_the_field():
    async with run_emulator(emulator_settings()) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            url = "/v2/calls/v3:made-up/actions/pay"
            cases = [
                ({"transaction_type": "charge"}, "10004", "/amount"),
                ({"payment_token": "tok_1", "valid_card_types": ["visa"]}, "10015", "/valid_card_types"),
                ({"postal_code": " "}, "10015", "/postal_code"),
                ({"payment_method": "cash"}, "10032", "/payment_method"),
            ]
            for body, code, pointer in cases:
                error = (await c.post(url, json=body)).json()["errors"][0]
                assert (error["code"], error["source"]["pointer"]) == (code, pointer), body
