"""Call queues: the calls waiting in each named queue of one namespace, in order (pure).

A queue is made by the first ``enqueue`` that names it (or by ``POST /v2/queues``) and lives until it is
deleted or the namespace is reset; an empty queue is kept, as Telnyx keeps it. Its calls wait first in, first
out: a call's position is its place in ``Queue.waiting``, counted from 1, so when one leaves, every call behind
it moves up one. A waiting call knows its seat (``Call.queued``), so whatever ends the call can take it out
without a lookup (docs/queues.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from emulator.calls.models import Call

DEFAULT_MAX_SIZE = 100  # enqueue's default; POST /v2/queues has its own (CREATE_DEFAULT_MAX_SIZE)
CREATE_DEFAULT_MAX_SIZE = 300


@dataclass(slots=True, eq=False)  # compared by identity: a seat is one stay, whatever its fields
class QueuedCall:
    """One call's stay in a queue, from ``enqueue`` until it leaves."""

    call: Call
    queue: Queue = field(repr=False)  # the queue holds its seats: a repr of both would never end
    enqueued_at: float  # monotonic seconds: how long it has waited
    enqueued_timestamp: str  # the same moment as ISO 8601 UTC, as the queue's calls show it
    ticket: int  # tells this stay from a later one of the same call, for its max_wait_time_secs timer
    keep_after_hangup: bool = False  # an ended call stays (not alive) until it is removed or taken

    @property
    def position(self) -> int:
        return self.queue.waiting.index(self) + 1

    def wait_time_secs(self, now: float) -> int:
        return max(0, round(now - self.enqueued_at))


@dataclass(slots=True, eq=False)
class Queue:
    id: str
    name: str
    max_size: int
    created_at: str  # ISO 8601 UTC
    updated_at: str
    waiting: list[QueuedCall] = field(default_factory=list)  # first in, first out

    @property
    def is_full(self) -> bool:
        return len(self.waiting) >= self.max_size

    def average_wait_time_secs(self, now: float) -> int:
        """How long the calls waiting now have waited, on average, in whole seconds (0 when empty)."""
        if not self.waiting:
            return 0
        return round(sum(now - seat.enqueued_at for seat in self.waiting) / len(self.waiting))

    def find(self, call_control_id: str) -> QueuedCall | None:
        return next((seat for seat in self.waiting if seat.call.call_control_id == call_control_id), None)


class Queues:
    """The queues of one namespace, by name, in the order they were made."""

    def __init__(self) -> None:
        self._by_name: dict[str, Queue] = {}
        self._tickets = 0

    def get(self, name: str) -> Queue | None:
        return self._by_name.get(name)

    def create(self, name: str, max_size: int, queue_id: str, timestamp: str) -> Queue:
        queue = self._by_name[name] = Queue(queue_id, name, max_size, timestamp, timestamp)
        return queue

    def delete(self, name: str) -> None:
        del self._by_name[name]

    def seat(self, queue: Queue, call: Call, now: float, timestamp: str, *, keep_after_hangup: bool) -> QueuedCall:
        """Put ``call`` at the end of ``queue`` (the caller checked it is not full and the call is in no queue)."""
        self._tickets += 1
        seat = QueuedCall(call, queue, now, timestamp, self._tickets, keep_after_hangup)
        queue.waiting.append(seat)
        call.queued = seat
        return seat

    def clear(self) -> None:
        """Forget every queue (the namespace is reset: its calls are forgotten too)."""
        for queue in self._by_name.values():
            for seat in queue.waiting:
                seat.call.queued = None
        self._by_name.clear()

    def __iter__(self) -> Iterator[Queue]:
        return iter(list(self._by_name.values()))

    def __len__(self) -> int:
        return len(self._by_name)


def unseat(seat: QueuedCall) -> int:
    """Take ``seat``'s call out of its queue; returns the position it had (the calls behind it move up)."""
    position = seat.position
    seat.queue.waiting.remove(seat)
    if seat.call.queued is seat:
        seat.call.queued = None
    return position
