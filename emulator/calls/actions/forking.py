"""Forking commands: fork_start and fork_stop (pure).

The call's audio goes to UDP targets as RTP (``media/fork_session.py``): ``rx`` gets what the call receives
(the far end, the scenario's caller), ``tx`` what it sends (the scenario's outbound track and everything the
call plays). ``call.fork.started`` is sent as the fork starts, ``call.fork.stopped`` at fork_stop or the
call's end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls import events
from emulator.calls.actions.context import OK, CommandContext, clip_key, ensure_media, note_client_state
from emulator.calls.effects import Effect, Emit, Outcome, StartFork, StopFork
from emulator.calls.models import Call, Fork
from emulator.calls.store import CallStore
from emulator.errors import Problem, ValidationFailed


def fork_start(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    rx, tx = _target(body.get("rx")), _target(body.get("tx"))
    if rx is None and tx is None:
        detail = "Give rx, tx or both: udp:IPv4:port targets for the call's RTP."
        raise ValidationFailed([Problem("10004", "Missing required parameter", detail, "/rx")])
    if call.fork is not None:
        detail = "The call is already forked; fork_stop it first."
        raise ValidationFailed([Problem("10015", "Already forking", detail, None)])
    note_client_state(call, body)
    call.fork = Fork(clip_key(call, "fork"), rx, tx, body.get("stream_type", "decrypted"))
    started = Emit(call, "call.fork.started", events.fork(call, call.fork.stream_type))
    return Outcome(OK, (*ensure_media(call), StartFork(call, call.fork), started))


def fork_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    if call.fork is None:
        raise ValidationFailed([Problem("10015", "Not forking", "The call is not being forked.", None)])
    note_client_state(call, body)
    return Outcome(OK, stop_fork(call))


def stop_fork(call: Call) -> tuple[Effect, ...]:
    """The fork ends (fork_stop, or the call's end): its packets stop and the app hears of it."""
    fork, call.fork = call.fork, None
    if fork is None:
        return ()
    return StopFork(call, fork.key), Emit(call, "call.fork.stopped", events.fork(call, fork.stream_type))


def _target(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    _, host, port = value.split(":")  # the schema has checked udp:IPv4:port
    return host, int(port)
