"""CallStore: every call the emulator knows, legal state changes, and command_id deduplication.

Synchronous and free of I/O on purpose: the HTTP layer checks, runs and records a command without
an ``await`` in between, so concurrent identical requests cannot both pass the dedup check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.calls.ids import IdFactory
from emulator.calls.models import Call, CallState, Direction, StreamRecord
from emulator.calls.queues import Queues
from emulator.errors import call_ended, call_not_answered, invalid_call_control_id

# Which state changes a call may make; anything else is a bug in a command, not a user error.
TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.PARKED: frozenset({CallState.ANSWERED, CallState.ENDED}),
    CallState.BRIDGING: frozenset({CallState.ANSWERED, CallState.ENDED}),
    CallState.ANSWERED: frozenset({CallState.ENDED}),
    CallState.ENDED: frozenset(),
}

# Numbers from the 555-01xx range reserved for fiction, for calls the emulator invents.
LENIENT_FROM = "+13125550100"
LENIENT_TO = "+13125550199"
LENIENT_CONNECTION_ID = "1000000000000000001"


class IllegalTransition(RuntimeError):
    pass


class CallStore:
    """In-memory calls of one emulator instance."""

    def __init__(
        self,
        ids: IdFactory,
        *,
        namespace: str = "",
        strict: bool = False,
        command_id_window: float = 60.0,
        history: int = 1000,
    ) -> None:
        self.ids = ids
        self.namespace = namespace  # stamped on every call, so what happens to a call knows its owner
        self.strict = strict
        self.command_id_window = command_id_window
        # Calls kept: past it the oldest *ended* calls are forgotten (live ones never), so a long run of
        # call churn holds bounded memory (at most a tenth more between passes). A forgotten id is an
        # unknown id again.
        self.history = history
        self._forget_at = history + 1  # len(calls) at which _forget_ended runs next
        self.calls: dict[str, Call] = {}  # in creation order, which _forget_ended relies on
        # (call_control_id, command_id) -> (expiry, the data first answered); insertion order is
        # expiry order, since every entry lives for the same window.
        self._commands: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        # The namespace's call queues (enqueue, /v2/queues): here so that every command reaches them as
        # ``store.queues``; ``Namespace.queues`` is the same object.
        self.queues = Queues()
        # Told of each call created and each state change (the namespace's event feed); given to every call.
        self.observer: Callable[[Call], None] | None = None

    def create(
        self,
        *,
        direction: Direction,
        state: CallState,
        from_: str,
        to: str,
        connection_id: str,
        now: float,
        call_control_id: str | None = None,
        client_state: str | None = None,
        call_session_id: str | None = None,  # another leg's: a leg of the same conversation (transfer, link_to)
    ) -> Call:
        call = Call(
            call_control_id=call_control_id or self.ids.call_control_id(),
            call_leg_id=self.ids.time_uuid(),
            call_session_id=call_session_id or self.ids.time_uuid(),
            connection_id=connection_id,
            from_=from_,
            to=to,
            direction=direction,
            state=state,
            client_state=client_state,
            namespace=self.namespace,
            observer=self.observer,
        )
        call.history.append((now, state))
        self.calls[call.call_control_id] = call
        if call.observer is not None:
            call.observer(call)
        if len(self.calls) >= self._forget_at:
            self._forget_ended()
            # The next pass waits for another tenth of the history: with many live calls a pass finds
            # little to forget, and a pass per new call would make creating a call O(calls).
            self._forget_at = max(len(self.calls), self.history) + max(self.history // 10, 1)
        return call

    def _forget_ended(self) -> None:
        """Forget the oldest ended calls until at most ``history`` calls are kept (or only live ones are left)."""
        excess = len(self.calls) - self.history
        ended: list[str] = []
        for call_control_id, call in self.calls.items():
            if len(ended) == excess:
                break
            if call.state is CallState.ENDED:
                ended.append(call_control_id)
        for call_control_id in ended:
            del self.calls[call_control_id]

    def lookup(self, call_control_id: str, now: float, lenient_state: CallState = CallState.ANSWERED) -> Call:
        """The call for a command. Lenient mode treats an unseen id as an incoming call in ``lenient_state``."""
        call = self.calls.get(call_control_id)
        if call is not None:
            return call
        if self.strict:
            raise invalid_call_control_id()
        call = self.create(
            direction=Direction.INCOMING,
            state=lenient_state,
            from_=LENIENT_FROM,
            to=LENIENT_TO,
            connection_id=LENIENT_CONNECTION_ID,
            now=now,
            call_control_id=call_control_id,
        )
        call.made_up = True
        return call

    def seen_command(self, call_control_id: str, command_id: str, now: float) -> dict[str, Any] | None:
        """The data of the first answer if this command_id ran on this call within the window.

        Dial has no call yet: its command_ids are kept under the call_control_id ``""``.
        """
        self._expire(now)
        entry = self._commands.get((call_control_id, command_id))
        return entry[1] if entry is not None else None

    def remember_command(self, call_control_id: str, command_id: str, now: float, data: dict[str, Any]) -> None:
        key = (call_control_id, command_id)
        self._commands.pop(key, None)
        self._commands[key] = (now + self.command_id_window, data)

    def clear(self, now: float) -> list[StreamRecord]:
        """Forget every call and command_id; returns the streams still running, for the runtime to stop.

        Live calls end first (no webhook: nothing hangs up, the emulator forgets), so a ring timer that
        fires later finds an ended call and does nothing.
        """
        running: list[StreamRecord] = []
        for call in self.calls.values():
            if call.state is not CallState.ENDED:
                transition(call, CallState.ENDED, now)
            call.pending_stream = None
            for record in call.active_streams():
                record.stop_requested = True
                running.append(record)
        self.calls.clear()
        self._commands.clear()
        self.queues.clear()
        return running

    def _expire(self, now: float) -> None:
        while self._commands:
            key, (expiry, _data) = next(iter(self._commands.items()))
            if expiry > now:
                break
            del self._commands[key]


def transition(call: Call, state: CallState, now: float) -> None:
    """Move ``call`` to ``state``; a move the table does not allow is a bug in a command."""
    if state not in TRANSITIONS[call.state]:
        raise IllegalTransition(f"{call.call_control_id}: {call.state} -> {state}")
    call.state = state
    call.history.append((now, state))
    if call.observer is not None:
        call.observer(call)


def require_alive(call: Call) -> None:
    if call.state is CallState.ENDED:
        raise call_ended()


def require_answered(call: Call) -> None:
    require_alive(call)
    if call.state is not CallState.ANSWERED:
        raise call_not_answered()
