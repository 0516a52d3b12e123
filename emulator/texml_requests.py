"""The requests a TeXML call makes to the app: document fetches and callbacks, form-encoded and signed.

Signed as Telnyx signs webhooks (``telnyx-signature-ed25519`` over ``"{timestamp}|{body}"``, and
``telnyx-timestamp``; a GET signs an empty body), and logged in the call's namespace with its webhooks, so the
control plane and the dashboard show them (``event_type`` ``texml.document``, ``texml.status``, ...).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx

from emulator.calls.models import Call
from emulator.timestamps import iso_utc
from emulator.webhooks.envelope import DeliveryAttempt, sent_signature

if TYPE_CHECKING:
    from emulator.state import EmulatorState

TIMEOUT = 10.0  # seconds the app has to answer a document fetch or a callback


async def send_request(
    state: EmulatorState, call: Call, url: str, method: str, params: dict[str, str], kind: str, *, failover: bool
) -> httpx.Response | str:
    """One request to the app about ``call``; its answer, or why none came."""
    form = urlencode(params).encode()
    timestamp = str(int(time.time()))
    signature = state.signing_key.sign(timestamp, form if method == "POST" else b"")
    headers = {"telnyx-signature-ed25519": signature, "telnyx-timestamp": timestamp}
    record = DeliveryAttempt(
        event_id=state.ids.event_id(),
        event_type=f"texml.{kind}",
        call_control_id=call.call_control_id,
        url=url,
        attempt=1,
        is_failover=failover,
        status=None,
        latency_ms=0.0,
        error=None,
        at=iso_utc(time.time()),
        ok=False,
        body=form,
        signature=sent_signature(headers),
    )
    started = time.monotonic()
    result: httpx.Response | str
    try:
        if method == "GET":
            # Added to the URL's own query (httpx's params= would replace it: "/next?step=2" keeps its step).
            target = httpx.URL(url).copy_merge_params(params)
            result = await state.http.get(target, headers=headers, timeout=TIMEOUT)
        else:
            headers["content-type"] = "application/x-www-form-urlencoded"
            result = await state.http.post(url, content=form, headers=headers, timeout=TIMEOUT)
        record.status, record.ok = result.status_code, 200 <= result.status_code < 300
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # InvalidURL is not an HTTPError ("http://[0]/")
        result = record.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    record.latency_ms = round((time.monotonic() - started) * 1000, 3)
    if state.runtime.webhooks is not None:
        state.runtime.webhooks.record_request(call, record)
    return result
