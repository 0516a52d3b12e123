"""SIP-level commands: refer, send_sip_info, siprec_start, siprec_stop, switch_supervisor_role (pure).

``refer`` asks the far end (the scenario) to call ``sip_address`` instead: ``call.refer.started`` at once
(NOTIFY 100 Trying), then, as the scenario's ``refer`` says, ``call.refer.completed`` and the end of the call
(the far end has gone to the new address), or ``call.refer.failed`` and the call goes on.

``send_sip_info`` is kept on the call; a leg bridged to it hears ``call.sip_info.received``. ``siprec_start``
records the call to a SIPREC server: ``siprec.started`` at once, or ``siprec.failed`` for a connector named
``unreachable...``; ``siprec.stopped`` at siprec_stop or the call's end. ``switch_supervisor_role`` keeps the
role on the call. No SIP is sent anywhere (docs/sip.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls import events
from emulator.calls.actions.context import OK, CommandContext, note_client_state
from emulator.calls.effects import Effect, Emit, Outcome, StartRefer
from emulator.calls.models import Call
from emulator.calls.sessions import SipInfo, Siprec
from emulator.calls.store import CallStore
from emulator.errors import Problem, ValidationFailed

TRYING = 100  # the NOTIFY a REFER's first answer carries
# A connector whose name starts with this stands for a recording server that never answers: siprec.failed.
UNREACHABLE_CONNECTOR = "unreachable"
UNREACHABLE_CAUSE = "no_answer"  # the Q.850 cause of siprec.failed then (Telnyx's example value)


def refer(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    note_client_state(call, body)
    started = Emit(call, "call.refer.started", events.refer(call, TRYING))
    return Outcome(OK, (started, StartRefer(call)))


def send_sip_info(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """A SIP INFO to the far end: kept on the call (the control plane lists them); a leg bridged to this one is
    the far end of Telnyx's own, and hears ``call.sip_info.received``."""
    note_client_state(call, body)
    info = SipInfo(body["content_type"], body["body"], ctx.timestamp)
    call.sip_info.append(info)
    other = call.bridged_to
    if other is None or not other.is_alive:
        return Outcome(OK)  # the far end is the scenario's phone: it takes the INFO and says nothing
    received = events.sip_info_received(other, info.content_type, info.body)
    return Outcome(OK, (Emit(other, "call.sip_info.received", received),))


def siprec_start(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """The call is recorded to the connector's SIPREC server from now on: one session at a time."""
    if call.siprec is not None:
        detail = "The call already has a SIPREC session; siprec_stop it first."
        raise ValidationFailed([Problem("10015", "SIPREC session already running", detail, None)])
    note_client_state(call, body)
    connector = body.get("connector_name")
    if connector is not None and connector.startswith(UNREACHABLE_CONNECTOR):
        return Outcome(OK, (Emit(call, "siprec.failed", events.siprec_failed(call, UNREACHABLE_CAUSE)),))
    call.siprec = Siprec(
        connector_name=connector,
        track=body.get("siprec_track", "both_tracks"),
        sip_transport=body.get("sip_transport", "udp"),
        secure=bool(body.get("secure", False)),
        session_timeout_secs=int(body.get("session_timeout_secs", 1800)),
        include_metadata_custom_headers=bool(body.get("include_metadata_custom_headers", False)),
        started_at=ctx.timestamp,
    )
    return Outcome(OK, (Emit(call, "siprec.started", events.siprec_started(call)),))


def siprec_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    if call.siprec is None:
        raise ValidationFailed([Problem("10015", "No SIPREC session", "The call has no SIPREC session.", None)])
    note_client_state(call, body)
    return Outcome(OK, stop_siprec(call))


def stop_siprec(call: Call) -> tuple[Effect, ...]:
    """The SIPREC session ends (siprec_stop, or the call's end): the recorder's leg is cleared normally."""
    session, call.siprec = call.siprec, None
    if session is None:
        return ()
    return (Emit(call, "siprec.stopped", events.siprec_stopped(call, "normal_clearing")),)
