"""What an entry of the action registry (``ACTIONS``, in ``__init__.py``) is, and the names Telnyx has."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.calls.actions.context import Command, CommandContext
from emulator.calls.effects import Outcome
from emulator.calls.models import Call, CallState
from emulator.calls.store import CallStore, require_alive, require_answered


class Requires(enum.Enum):
    """The call state an action needs; otherwise Telnyx's error (90018 ended, 90034 not yet answered)."""

    ALIVE = "alive"
    ANSWERED = "answered"


@dataclass(frozen=True, slots=True)
class Action:
    name: str  # the URL segment
    schema: str  # schemas/<schema>.schema.json
    handler: Command
    operation_id: str  # the OpenAPI operationId (Telnyx's, where it has one)
    summary: str  # the OpenAPI summary
    component: str  # the OpenAPI component name of the request body (Telnyx's)
    requires: Requires = Requires.ALIVE
    # What a call_control_id the emulator has never seen is, in lenient mode: answered, except for
    # `answer`, which meets a ringing call (so answering it sends call.answered and starts its stream).
    lenient_state: CallState = CallState.ANSWERED
    starts_stream: bool = False  # may start a stream, and so meets the --max-streams limit (429)
    result: str = "ActionResult"  # the OpenAPI component of the 200's data
    method: str = "POST"  # the HTTP method Telnyx takes it with; another one is answered 405

    def run(self, ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
        """Check the call's state, then perform the action."""
        if self.requires is Requires.ANSWERED:
            require_answered(call)
        else:
            require_alive(call)
        return self.handler(ctx, store, call, body)


# Every call action of Telnyx's API (its /calls/{call_control_id}/actions/{name} paths): one without an entry in
# ACTIONS is answered 501 naming it, a name Telnyx does not have 404.
TELNYX_ACTIONS = frozenset(
    """ai_assistant_add_messages ai_assistant_join ai_assistant_start ai_assistant_stop answer bridge
    client_state_update conversation_relay_start conversation_relay_stop enqueue fork_start fork_stop gather
    gather_stop gather_using_ai gather_using_audio gather_using_speak hangup leave_queue playback_start
    playback_stop record_pause record_resume record_start record_stop refer reject send_dtmf send_sip_info
    siprec_start siprec_stop speak streaming_start streaming_stop suppression_start suppression_stop
    switch_supervisor_role transcription_start transcription_stop transfer""".split()
    # Newer than the reference spec: the official SDKs call it (telnyx-python 4.189: calls.actions.pay).
    + ["pay"]
)
