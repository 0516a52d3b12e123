"""The scripted caller reacts to what the app does: its waits for a speak or playback to start or end, and for
the DTMF the app sends. (At --speed 0 a stream makes media time race, so an app that answers webhooks over HTTP
would race the caller's timeouts: the engine's tick-by-tick tests cover that the waits decide alike.)"""

from __future__ import annotations

import httpx
import pytest

from tests.receivers import WebhookReceiver
from tests.servers import WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"
# "The prompt ends, the caller presses 2"; then it waits for the app's tones 4 and 5 and hangs up.
IVR = """\
inbound:
  - wait_for: {event: speak_end, timeout_ms: 20000, on_timeout: fail}
  - dtmf: {digits: "2"}
  - wait_for: {digits: "45", timeout_ms: 20000, on_timeout: fail}
  - hangup: {cause: normal_clearing}
"""


def kinds(hooks: WebhookReceiver) -> list[str]:
    return [r.event_type for r in hooks.requests]


async def test_the_caller_presses_2_when_the_prompt_ends_and_hangs_up_after_the_apps_tones(tmp_path):
    (tmp_path / "ivr.yaml").write_text(IVR)
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=4)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                created = await c.post(
                    "/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": str(tmp_path / "ivr.yaml")}
                )
                actions = f"/v2/calls/{created.json()['data']['call_control_id']}/actions"
                assert (await c.post(f"{actions}/answer", json={"stream_url": target.url})).status_code == 200
                await c.post(f"{actions}/speak", json={"payload": "Press 2 for sales.", "voice": "female"})
                await hooks.wait_until(lambda: "call.dtmf.received" in kinds(hooks), seconds=15)
                # The app sends 3, then 4 5: the caller waits for 4 5 in a row.
                for digits in ("3", "45"):
                    assert (await c.post(f"{actions}/send_dtmf", json={"digits": digits})).status_code == 200
                await hooks.wait_until(lambda: "call.hangup" in kinds(hooks), seconds=15)
                stream = await target.wait_closed(0)
    order = kinds(hooks)
    assert order.index("call.speak.ended") < order.index("call.dtmf.received") < order.index("call.hangup")
    (pressed,) = [r.json["data"]["payload"]["digit"] for r in hooks.requests if r.event_type == "call.dtmf.received"]
    assert pressed == "2"
    hangup = next(r.json["data"]["payload"] for r in hooks.requests if r.event_type == "call.hangup")
    assert (hangup["hangup_cause"], hangup["hangup_source"]) == ("normal_clearing", "caller")
    assert stream.events()[-1] == "stop"
