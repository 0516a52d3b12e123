"""Contract tests: the official ``telnyx`` Python SDK, pointed at the emulator with ``base_url``, works as
against api.telnyx.com — calls, streams, errors as the SDK's exception classes, verified webhooks.

They use the package's own pytest fixture (``telnyx_emulator``), as an app's tests would.
"""

from __future__ import annotations

import base64

import pytest

telnyx = pytest.importorskip("telnyx")

pytestmark = pytest.mark.sdk

CALLER, APP_NUMBER = "+13125550111", "+13125550122"


def sdk_for(emu, api_key: str | None = None):
    # max_retries=0: an error status must surface at once, not after the SDK's backoff.
    return telnyx.Telnyx(api_key=api_key or emu.api_key, base_url=emu.api_url, public_key=emu.public_key, max_retries=0)


@pytest.mark.telnyx_emulator(scenario="stay-on-line")  # the callee stays on the line until the app hangs up
def test_dial_is_answered_streams_and_reports_its_status(telnyx_emulator):
    client = sdk_for(telnyx_emulator)
    state = base64.b64encode(b"order-66").decode()
    dialed = client.calls.dial(
        connection_id="1234", from_=CALLER, to=APP_NUMBER, stream_url=telnyx_emulator.stream_url, client_state=state
    )
    call_id = dialed.data.call_control_id
    assert call_id.startswith("v3:") and dialed.data.is_alive is False and dialed.data.record_type == "call"

    answered = telnyx_emulator.wait_for_webhook("call.answered", call_control_id=call_id)
    assert answered.payload["client_state"] == state
    assert telnyx_emulator.wait_for_frames(5)[0]["media"]["track"] == "inbound"
    status = client.calls.retrieve_status(call_id)
    assert status.data.is_alive is True and status.data.call_control_id == call_id

    assert client.calls.actions.hangup(call_id).data.result == "ok"
    assert telnyx_emulator.wait_for_stream_end().events()[-1] == "stop"
    telnyx_emulator.wait_for_webhook("call.hangup", call_control_id=call_id)
    assert client.calls.retrieve_status(call_id).data.is_alive is False


def test_an_incoming_call_is_answered_and_its_streams_started_and_stopped(telnyx_emulator):
    client = sdk_for(telnyx_emulator)
    telnyx_emulator.control.incoming_call(CALLER, APP_NUMBER, scenario="stay-on-line")
    hook = telnyx_emulator.wait_for_webhook("call.initiated")
    event = client.webhooks.unwrap(hook.text, headers=hook.headers)
    assert event.data.event_type == "call.initiated"
    call_id = event.data.payload.call_control_id

    answer = client.calls.actions.answer(call_id, stream_url=telnyx_emulator.stream_url, stream_track="both_tracks")
    assert answer.data.result == "ok"
    first = telnyx_emulator.wait_for_stream(0)
    started = client.calls.actions.start_streaming(
        call_id,
        stream_url=telnyx_emulator.stream_url,
        stream_codec="L16",
        custom_parameters=[{"name": "lang", "value": "en"}],
    )
    assert started.data.result == "ok"
    second_start = telnyx_emulator.wait_for_frames(1, event="start", stream=1)[0]
    assert second_start["start"]["media_format"]["encoding"] == "L16"
    assert second_start["start"]["custom_parameters"] == {"lang": "en"}

    telnyx_emulator.wait_for_frames(1, event="start", stream=0)
    stopped = client.calls.actions.stop_streaming(call_id, stream_id=first.stream_id)
    assert stopped.data.result == "ok"
    assert telnyx_emulator.wait_for_stream_end(0).close_code == 1000
    assert not telnyx_emulator.streams[1].closed
    assert client.calls.actions.stop_streaming(call_id).data.result == "ok"
    assert telnyx_emulator.wait_for_stream_end(1).close_code == 1000
    client.calls.actions.hangup(call_id)
    telnyx_emulator.wait_for_webhook("call.hangup")
    telnyx_emulator.wait_for_webhooks("streaming.stopped", count=2)


def test_every_webhook_verifies_with_the_sdk_and_a_changed_body_does_not(telnyx_emulator):
    client = sdk_for(telnyx_emulator)
    call = telnyx_emulator.control.incoming_call(CALLER, APP_NUMBER)
    client.calls.actions.answer(call["call_control_id"], stream_url=telnyx_emulator.stream_url)
    telnyx_emulator.wait_for_stream_end()
    telnyx_emulator.wait_for_webhook("streaming.stopped")
    hooks = telnyx_emulator.webhooks
    assert [client.webhooks.unwrap(h.text, headers=h.headers).data.event_type for h in hooks] == [
        h.event_type for h in hooks
    ]
    assert {"call.initiated", "call.answered", "streaming.started", "call.dtmf.received"} <= {
        h.event_type for h in hooks
    }
    forged = hooks[0].text.replace("incoming", "outgoing")
    with pytest.raises(Exception, match="(?i)signature"):  # ValueError, or telnyx.lib's WebhookVerificationError
        client.webhooks.unwrap(forged, headers=hooks[0].headers)


def test_invalid_commands_raise_unprocessable_entity_with_telnyx_codes(telnyx_emulator):
    client = sdk_for(telnyx_emulator)
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.calls.actions.start_streaming("v3:sdk", stream_url="https://not-a-websocket", stream_track="both")
    assert info.value.status_code == 422
    errors = info.value.body["errors"]
    assert [(e["code"], e["source"]["pointer"]) for e in errors] == [
        ("10032", "/stream_track"),
        ("10003", "/stream_url"),
    ]

    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.calls.actions.stop_streaming("v3:sdk")
    assert info.value.body["errors"][0]["code"] == "90048"


def test_pay_newer_than_the_spec_runs_and_an_unknown_action_is_not_found(telnyx_emulator):
    client = sdk_for(telnyx_emulator)
    # pay is newer than the reference spec; the SDK calls it, the emulator performs it (docs/pay.md).
    assert client.calls.actions.pay("v3:sdk", amount=5, payment_token="tok_visa").data.result == "ok"
    done = telnyx_emulator.wait_for_webhook("call.payment.completed").payload
    assert done["result"] == "success" and done["charge_id"].startswith("emu_")
    with pytest.raises(telnyx.NotFoundError) as info:
        client.post("/calls/v3:sdk/actions/teleport", cast_to=object, body={})
    assert info.value.body["errors"][0]["code"] == "10005"


@pytest.mark.telnyx_emulator(api_keys=frozenset({"KEY-right"}), api_key="KEY-right")
def test_a_wrong_api_key_raises_authentication_error(telnyx_emulator):
    assert sdk_for(telnyx_emulator).calls.retrieve_status("v3:sdk").data.is_alive is True
    with pytest.raises(telnyx.AuthenticationError) as info:
        sdk_for(telnyx_emulator, api_key="KEY-wrong").calls.retrieve_status("v3:sdk")
    assert info.value.status_code == 401 and info.value.body["errors"][0]["code"] == "10009"


@pytest.mark.anyio
async def test_the_async_sdk_client_works_too(telnyx_emulator):
    client = telnyx.AsyncTelnyx(api_key=telnyx_emulator.api_key, base_url=telnyx_emulator.api_url, max_retries=0)
    async with client:
        call = await telnyx_emulator.acontrol.incoming_call(CALLER, APP_NUMBER, scenario="stay-on-line")
        await client.calls.actions.answer(call["call_control_id"], stream_url=telnyx_emulator.stream_url)
        frames = await telnyx_emulator.wait_for_frames_async(3)
        assert frames[0]["stream_id"] == (await telnyx_emulator.acontrol.streams())[0]["stream_id"]
        await client.calls.actions.hangup(call["call_control_id"])
        await telnyx_emulator.wait_for_webhook_async("call.hangup")
        assert (await client.calls.retrieve_status(call["call_control_id"])).data.is_alive is False
