"""CallRunner: paces one call's media engine and hands every tick to the streams listening to it.

Tick ``n`` of a call is due at ``t0 + n * 20 ms / speed``, computed from the start every time, so a late
wake-up (a busy loop, a slow socket) never shifts the ticks after it: they catch up. One task per answered
call, whether or not a stream listens: the caller's DTMF and its hangup happen on a call without a stream too.

The call's media starts when the answer's own streams (``stream_url`` on answer or dial) have connected or
failed, so such a stream hears the caller from the first word. At ``--speed 0`` media time runs as fast as
the streams take it; with no stream listening, or once a caller that stays on the line has nothing more to
say, it runs in real time, so an app that answers and then starts a stream hears the call from where a real
one would be, and a silent call does not flood its streams; so does a leg bridged to another, whose voice
comes at the other leg's pace (docs/architecture.md).

In the steady state (a stream listens, at a set pace) the ticks are callbacks of the clock's shared ticker
(``_ride``): each 20 ms slot, one timer walks the calls due in it, and no task wakes per call per tick.
The runner's task sleeps until a tick needs it: a slow target to wait for, the end, no stream left, a stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Protocol

from emulator.clock import Clock
from emulator.media.call_audio import ClipEvent
from emulator.media.call_recorder import CallRecording
from emulator.media.engine import CallMedia
from emulator.media.ticks import MediaTick
from emulator.scenarios.cursor import End
from emulator.timing import FRAME_SECONDS

# At speed 0 nothing sleeps; yield to the event loop this often so HTTP requests and other calls are served.
_YIELD_EVERY_TICKS = 25


class Listener(Protocol):
    """A stream subscribed to the call's media."""

    @property
    def stream_id(self) -> str: ...

    @property
    def pending(self) -> object | None: ...

    # True when it reads what it is sent with flow control (a WebSocket), so at --speed 0 media time may race
    # as fast as it reads; False when it cannot push back (RTP over UDP): it hears the call in real time.
    races: bool

    def deliver(self, tick: MediaTick, lateness: float) -> bool:
        """Write the tick's frames, or keep them as ``pending``; False when the stream hears no more."""
        ...

    async def flush(self) -> bool:
        """Send what is pending; False when the connection broke."""
        ...


class CallMediaObserver(Protocol):
    def call_dtmf(self, runner: CallRunner, digit: str) -> None: ...

    def caller_done(self, runner: CallRunner, end: End) -> None: ...

    def clip_events(self, runner: CallRunner, events: Sequence[ClipEvent]) -> None: ...

    def recordings_saved(self, runner: CallRunner, recordings: Sequence[CallRecording]) -> None: ...

    def gather_ended(self, runner: CallRunner, status: str, digits: str) -> None: ...

    def cue_due(self, runner: CallRunner, cue: object) -> None: ...

    def caller_said(self, runner: CallRunner, text: str, is_final: bool) -> None: ...


class MediaCall(Protocol):
    """The call this media belongs to, as the runner sees it: it keeps its tick count (RTP figures)."""

    media_ticks: int


class CallRunner:
    def __init__(
        self,
        call: MediaCall,
        engine: CallMedia,
        clock: Clock,
        observer: CallMediaObserver,
        *,
        awaiting: Iterable[str] = (),
    ) -> None:
        self.call = call  # the Call this media belongs to
        self.engine = engine
        self.clock = clock
        self.observer = observer
        self.listeners: dict[str, Listener] = {}
        self._listening: tuple[Listener, ...] = ()  # the same, iterated every tick without a copy
        self._racing = False  # one of them may set the pace at --speed 0 (Listener.races)
        self._awaiting = set(awaiting)  # the answer's streams, not yet connected nor failed
        self._changed = asyncio.Event()  # a listener came or went, or the runner was stopped
        self._stopped = False
        self._waiter: asyncio.Future[None] | None = None
        # The schedule: tick i is due at _anchor_t + (i - _anchor_n) * _step (see _anchor).
        self._anchor_n, self._anchor_t, self._step, self._real_time = 0, 0.0, FRAME_SECONDS, False
        # While it sleeps through quiet ticks (_sleep_through): their first tick and number, and how many of them
        # catch_up has already jumped.
        self._sleep: tuple[int, int] | None = None
        self._slept = 0
        # While the ticker runs the ticks (_ride): the next tick, what the task must do when it wakes, and a
        # generation that makes a callback left from an earlier ride do nothing.
        self._ride_waiter: asyncio.Future[None] | None = None
        self._ride_n, self._ride_over, self._ride_gen = 0, False, 0
        self._ride_slow: tuple[MediaTick, list[Listener]] | None = None

    # -- listeners -------------------------------------------------------------------------------

    def attach(self, listener: Listener) -> None:
        self.listeners[listener.stream_id] = listener
        self._listening = tuple(self.listeners.values())
        self._racing = any(listener.races for listener in self._listening)
        self._settled(listener.stream_id)

    def detach(self, stream_id: str) -> None:
        """The stream is gone (or never came): it hears nothing more and its app audio leaves the mix."""
        self._forget(stream_id)
        self.engine.remove_app_audio(stream_id)
        self._settled(stream_id)

    def _forget(self, stream_id: str) -> None:
        if self.listeners.pop(stream_id, None) is not None:
            self._listening = tuple(self.listeners.values())
            self._racing = any(listener.races for listener in self._listening)

    def _settled(self, stream_id: str) -> None:
        self._awaiting.discard(stream_id)
        self._changed.set()
        self._wake()

    def catch_up(self) -> None:
        """Sleeping through quiet ticks, jump the engine to the tick due now: a timer added next counts from the
        present, not from the tick the sleep began at (which may be seconds of media ago)."""
        if self._sleep is None:
            return
        n, quiet = self._sleep
        due = self._slept + self._skippable(min(quiet, max(0, self._ticks_passed(n))) - self._slept)
        if due > self._slept:
            self.engine.skip(due - self._slept)
            self._slept = due
            self.call.media_ticks = n + due

    def _ticks_passed(self, n: int) -> int:
        return int((self.clock.monotonic() - self._anchor_t) / self._step) - (n - self._anchor_n) + 1

    def _skippable(self, ticks: int) -> int:
        """At most ``ticks``, and never past a timer set during the sleep: it fires on its own tick. None once the
        caller was given live steps: they start at the tick they were queued for (after ``catch_up``)."""
        if self.engine.is_live:
            return 0
        timers = self.engine.timers
        return max(0, min(ticks, timers[0][0] - self.engine.index)) if timers else ticks

    def poke(self) -> None:
        """Something was queued to play (a clip): a runner sleeping through quiet ticks wakes to play it."""
        self._changed.set()
        self._wake()

    def stop(self) -> None:
        """The call ended (hung up by the app, by the caller, at shutdown): no more ticks; the clips still
        queued or playing end with call_hangup."""
        if self._stopped:
            return
        self._stopped = True
        if self.engine.end is None:
            ended = self.engine.hang_up()
            if ended:
                self.observer.clip_events(self, ended)
            recordings = self.engine.stop_recording()
            if recordings:
                self.observer.recordings_saved(self, recordings)
            gathered = self.engine.stop_gather("call_hangup")
            if gathered is not None:
                self.observer.gather_ended(self, *gathered)
        self._changed.set()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._stopped and self._ride_waiter is not None and not self._ride_waiter.done():
            self._ride_waiter.set_result(None)  # only a stop interrupts a ride: the ticks read the listeners anew

    # -- pacing ----------------------------------------------------------------------------------

    async def run(self) -> None:
        await self._await_start()
        engine, clock = self.engine, self.clock
        fast = clock.speed == 0
        self._anchor(0, clock.aligned_start(), real_time=False)
        n = 0
        while not self._stopped:
            if not self.listeners:
                if engine.is_idle:
                    # The caller stays on the line, silent, and nobody listens: nothing happens until a stream comes.
                    await self._idle()
                    self._anchor(n, clock.aligned_start(), real_time=False)
                    continue
                quiet = engine.quiet_ticks()
                if quiet > 1:
                    n = await self._sleep_through(n, quiet)
                    continue
            # At speed 0, media time races only while there is something to hear: with no stream listening, or
            # a caller that stays on the line in silence, it runs in real time.
            if fast:
                # A leg joined to another (a bridge) hears it in real time too: two legs race at different paces.
                slow = not self._racing or engine.is_idle or engine.is_joined
                if self._real_time != slow:
                    self._anchor(n, clock.monotonic(), real_time=slow)
            lateness = 0.0
            if fast and not self._real_time:
                if n % _YIELD_EVERY_TICKS == 0:
                    await asyncio.sleep(0)
            elif self._listening and not fast:
                # The steady state: streams listen, at a set pace. The clock's ticker runs the ticks; this task
                # sleeps until one needs it (a slow target to wait for, the end, no stream left).
                n, over = await self._ride(n)
                if over:
                    return
                continue
            else:
                deadline = self._deadline(n)
                await self._sleep_until(deadline)
                lateness = clock.monotonic() - deadline
            if self._stopped:
                break
            tick, lagging = self._advance(n, lateness)
            n += 1
            if lagging:
                await self._flush(lagging)
            if not self._observe(tick):
                return

    def _advance(self, n: int, lateness: float) -> tuple[MediaTick, list[Listener]]:
        """Tick ``n`` of the engine, handed to every listener. Returns it, with the listeners that could not take
        it at once (their targets read slowly): ``_flush`` awaits them."""
        tick = self.engine.advance()
        self.call.media_ticks = n + 1
        slow: list[Listener] = []
        for listener in self._listening:
            if not listener.deliver(tick, lateness):
                self._forget(listener.stream_id)
            elif listener.pending is not None:
                slow.append(listener)
        return tick, slow

    async def _flush(self, slow: list[Listener]) -> None:
        for listener in slow:
            if not await listener.flush():  # flow control: wait for the target to read
                self._forget(listener.stream_id)

    def _observe(self, tick: MediaTick) -> bool:
        """Tell the call what happened in the tick; False when its media is over."""
        observer = self.observer
        for digit in tick.dtmf:
            observer.call_dtmf(self, digit)
        for text, is_final in tick.said:
            observer.caller_said(self, text, is_final)
        if tick.events:
            observer.clip_events(self, tick.events)
        if tick.saved:
            observer.recordings_saved(self, tick.saved)
        if tick.gathered is not None:
            observer.gather_ended(self, *tick.gathered)
        for cue in tick.cues:
            observer.cue_due(self, cue)
            if self._stopped:  # the cue ended the call (its time limit)
                return False
        if tick.end is not None:
            observer.caller_done(self, tick.end)
            return False
        return True

    # -- the steady state: ticks run by the clock's ticker ---------------------------------------

    async def _ride(self, n: int) -> tuple[int, bool]:
        """Let the clock's ticker call ``_ride_tick`` at each deadline from tick ``n`` on, with no wake-up of this
        task per tick (with many calls, one per call every 20 ms was a sixth of the emulator's CPU). Returns the
        next tick, and whether the call's media is over, once a tick needs this task or the runner is stopped."""
        loop = asyncio.get_running_loop()
        self._ride_n, self._ride_over, self._ride_slow = n, False, None
        ride = self._ride_waiter = loop.create_future()
        self._ride_gen += 1
        gen = self._ride_gen
        if self._deadline(n) > self.clock.monotonic():
            self.clock.call_at(self._deadline(n), lambda: self._ride_tick(gen))
        else:
            self._ride_tick(gen)
        try:
            await ride
        finally:
            self._ride_gen += 1  # a callback still due is stale: it does nothing
            self._ride_waiter = None
        pending = self._ride_slow
        if pending is not None:
            tick, slow = pending
            self._ride_slow = None
            await self._flush(slow)
            if not self._observe(tick):
                return self._ride_n, True
        return self._ride_n, self._ride_over

    def _ride_tick(self, gen: int) -> None:
        ride = self._ride_waiter
        if gen != self._ride_gen or ride is None or ride.done():
            return
        clock = self.clock
        try:
            while True:  # a late tick: those due since run at once, as the task would; the schedule never shifts
                n = self._ride_n
                tick, slow = self._advance(n, clock.monotonic() - self._deadline(n))
                self._ride_n = n + 1
                if slow:  # the task awaits the slow targets, then tells the call about the tick
                    self._ride_slow = (tick, slow)
                    break
                if not self._observe(tick):
                    self._ride_over = True
                    break
                if self._stopped or not self._listening:
                    break
                deadline = self._deadline(n + 1)
                if deadline > clock.monotonic():
                    clock.call_at(deadline, lambda: self._ride_tick(gen))
                    return
        except BaseException as exc:  # raised in the task, as if it had run the tick itself
            if not ride.done():
                ride.set_exception(exc)
            return
        if not ride.done():
            ride.set_result(None)

    def _anchor(self, n: int, at: float, *, real_time: bool) -> None:
        """From tick ``n`` on, tick ``i`` is due at ``at + (i - n)`` frame periods (real ones at speed 0)."""
        self._anchor_n, self._anchor_t, self._real_time = n, at, real_time
        if self.clock.speed == 0 and not real_time:
            self._step = 0.0
        else:
            self._step = FRAME_SECONDS if real_time else FRAME_SECONDS / self.clock.speed

    def _deadline(self, n: int) -> float:
        return self._anchor_t + (n - self._anchor_n) * self._step

    async def _sleep_through(self, n: int, quiet: int) -> int:
        """Nobody listens and nothing happens for ``quiet`` ticks: sleep until the first tick that may matter
        (or until a stream comes), then jump the engine over the ticks that have passed, without computing them.
        Returns the next tick. A call without a stream costs a wake-up per digit or segment, not per tick."""
        if self.clock.speed == 0 and not self._real_time:
            self._anchor(n, self.clock.monotonic(), real_time=True)
        self._sleep, self._slept = (n, quiet), 0
        try:
            await self._sleep_until(self._deadline(n + quiet))
        finally:
            self._sleep = None
        skipped = self._slept + self._skippable(min(quiet, max(0, self._ticks_passed(n))) - self._slept)
        self.engine.skip(skipped - self._slept)
        self.call.media_ticks = n + skipped
        return n + skipped

    async def _await_start(self) -> None:
        # Each awaited stream settles by itself: it connects, fails (its connect is bounded by
        # --connect-timeout), or is stopped. No timer of our own is needed.
        while self._awaiting and not self._stopped:
            self._changed.clear()
            await self._changed.wait()

    async def _idle(self) -> None:
        """Until a stream comes, something is queued to play, or the call ends."""
        self._changed.clear()
        while self.engine.is_idle and not self.listeners and not self._stopped:
            await self._changed.wait()
            self._changed.clear()

    async def _sleep_until(self, deadline: float) -> None:
        if deadline <= self.clock.monotonic():
            return
        waiter = self._waiter = self.clock.wake_at(deadline)
        try:
            await waiter
        finally:
            self._waiter = None
