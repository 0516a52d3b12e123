"""SIP-level commands: refer (pure).

``refer`` asks the far end (the scenario) to call ``sip_address`` instead: ``call.refer.started`` at once
(NOTIFY 100 Trying), then, as the scenario's ``refer`` says, ``call.refer.completed`` and the end of the call
(the far end has gone to the new address), or ``call.refer.failed`` and the call goes on (docs/sip.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls import events
from emulator.calls.actions.context import OK, CommandContext, note_client_state
from emulator.calls.effects import Emit, Outcome, StartRefer
from emulator.calls.models import Call
from emulator.calls.store import CallStore

TRYING = 100  # the NOTIFY a REFER's first answer carries


def refer(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    note_client_state(call, body)
    started = Emit(call, "call.refer.started", events.refer(call, TRYING))
    return Outcome(OK, (started, StartRefer(call)))
