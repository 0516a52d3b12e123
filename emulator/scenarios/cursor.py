"""Walking a compiled track: the caller's script, tick by tick, as the stream engine drives it, and the render of
what an app that never answers receives.

A track is compiled once into segments (``segments``): audio, waits for the app, hang-ups. ``ScriptCursor`` walks
a ``CompiledTrack``: ``advance(app_playing, marks)`` once per tick returns a ``Tick`` saying which frame to send (a
segment's frame, or an idle frame), which DTMF digits to report first, and when the script is over (``End``:
completed, hangup with a cause, or failed with the wait that timed out). Its waits are decided by the turn-taking
pieces of ``emulator.scenarios.turns`` (``Turn``, ``WaitState``), in media time: tick ``n`` is at ``n * 20`` ms.

**Live steps.** ``play_live(position, at)`` queues one of the track's live segments (``CompiledTrack.add_live``:
a DTMF, speech, file or silence the control plane asks for), or a hangup (``None``), to play from the next tick,
after the live steps queued before it. The script **pauses** while they play: the segment it was in (audio or a
wait) resumes where it stopped once they are over, its DTMF and words are reported that much later, and a wait's
timeout is counted without them. The app's audio and marks during the pause still count for the wait the caller
was in. A live hangup ends the script there. After the script has ended (``at_end: stay``) live steps still play.

``render(track)`` is what an app that never plays audio nor echoes a mark receives: every wait lasts its
timeout (rounded up to whole frames) and then does its ``on_timeout``. A unit test checks it against the cursor.

Integration (the engine, per stream): compile once per (scenario, codec) with ``segments.compile_track`` and
share the result (it is immutable; pre-encode each AudioSegment and the idle loop to payloads if you like);
per stream make a ``ScriptCursor(track)``. At every tick ``n``, before sending anything for tick ``n``:

1. ``played = playout.take()`` — the app's audio for tick ``n``;
2. ``tick = cursor.advance(app_playing=played.pcm is not None, marks=echoed)``, where ``echoed`` are the names of
   the ``mark`` frames the stream sends the app at this tick (however it came to echo them);
3. report ``tick.dtmf`` (``dtmf`` frames, ``call.dtmf.received``), then: if ``tick.end`` is set, end the stream as
   it says and send no media (``completed``: as today; ``hangup``: ``call.hangup`` with ``tick.end.cause``, then
   ``stop``; ``failed``: record ``tick.end.error``, then ``stop``); else send ``track.frame(tick)`` (or its
   pre-encoded payload: ``segment``/``frame`` index it) as the inbound frame.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from emulator.scenarios.segments import AudioSegment, CompiledTrack, HangupSegment, WaitSegment, compile_track
from emulator.scenarios.steps import DtmfEvent, Mix, Step, WaitFor
from emulator.scenarios.turns import AppEvent, Decision, Turn, WaitState
from emulator.timing import FRAME_MS


@dataclass(frozen=True, slots=True)
class End:
    reason: str  # "completed" (the script ran out), "hangup" or "failed"
    at_ms: int
    cause: str | None = None  # hangup: the hangup_cause
    error: str | None = None  # failed: which wait timed out, e.g. "x.yaml:7: inbound[3].wait_for: timed out ..."


class Tick(NamedTuple):
    """What to send at one tick: DTMF reports first, then one inbound frame, unless the script has ended.

    A NamedTuple rather than a frozen dataclass: one is built every 20 ms for every stream, and a frozen
    dataclass's ``__init__`` costs about five times as much."""

    at_ms: int
    dtmf: tuple[str, ...] = ()  # digits whose tones have just finished
    # The AudioSegment playing (its position: index into segments, or past them a live one), or None: an idle frame.
    segment: int | None = None
    frame: int = 0  # the frame within that segment, or within the idle loop
    end: End | None = None
    waiting: WaitFor | None = None  # the wait this idle frame belongs to (for logs and the control plane)
    # Words of say steps heard by now: (text, is_final), half-way through (False) and once said (True).
    said: tuple[tuple[str, bool], ...] = ()


class ScriptCursor:
    """Walks a CompiledTrack tick by tick. Pure: no clock, no I/O; the engine supplies what the app did."""

    def __init__(self, track: CompiledTrack) -> None:
        self.track = track
        self.ticks = 0  # ticks advanced so far
        self.end: End | None = None
        self._index = 0  # current segment
        self._start_tick = 0  # tick at which the current segment began
        self._turn = Turn()
        self._wait: WaitState | None = None
        self._dtmf: list[tuple[int, str]] = []  # (tick to report at, digit)
        self._said: list[tuple[int, str, bool]] = []  # (tick to report at, text, is_final), in tick order
        # Live steps (module docstring): positions queued (None: hang up), the one playing and its ticks, the tick
        # the queued ones end at, and while they play, the tick the script paused at and its reports.
        self._live: deque[int | None] = deque()
        self._playing: int | None = None
        self._playing_from = self._playing_until = 0
        self._live_until = 0
        self._paused: tuple[int, list[tuple[int, str]], list[tuple[int, str, bool]]] | None = None
        self._paused_in_wait = False  # the pause began while the script waited for the app

    @property
    def is_live(self) -> bool:
        """Live steps are queued or playing (or the last one ends at the next tick)."""
        return self._playing is not None or bool(self._live)

    @property
    def hangup_queued(self) -> bool:
        """A live hangup waits behind the live steps: nothing given after it would ever play."""
        return None in self._live

    def play_live(self, position: int | None, at: int) -> int:
        """Queue the live segment at ``position`` (None: hang up) after those queued before it; returns the tick it
        starts at. ``at`` is the call's tick now: a cursor whose script has ended is no longer advanced, so its own
        count stops there."""
        self.ticks = max(self.ticks, at)
        start = max(self.ticks, self._live_until)
        self._live_until = start + (self.track.frames_in(position) if position is not None else 0)
        self._live.append(position)
        return start

    def advance(self, app_playing: bool = False, marks: Iterable[str] = (), heard: Sequence[AppEvent] = ()) -> Tick:
        n = self.ticks
        self.ticks += 1
        now = n * FRAME_MS
        self._turn = self._turn.observe(now, app_playing, marks, heard)
        if self._playing is not None or self._live:
            live = self._live_tick(n, now)
            if live is not None:
                return live
        if self.end is not None:
            return Tick(now, end=self.end)
        segments = self.track.segments
        while True:
            if self._index >= len(segments):
                return self._finish(n, End("completed", now))
            segment = segments[self._index]
            if isinstance(segment, AudioSegment):
                if n == self._start_tick:
                    self._schedule_reports(segment, n)
                offset = n - self._start_tick
                if offset < self.track.segment_frames[self._index]:
                    said = self._said_by(n) if self._said and self._said[0][0] <= n else ()
                    return Tick(now, self._due(n) if self._dtmf else (), self._index, offset, said=said)
            elif isinstance(segment, HangupSegment):
                return self._finish(n, End("hangup", now, cause=segment.cause))
            else:
                if self._wait is None:
                    self._wait = WaitState(segment.condition, now)
                self._wait, decision = self._wait.feed(self._turn, now)
                condition = segment.condition
                if decision is Decision.WAIT:
                    said = self._said_by(n) if self._said else ()
                    return Tick(now, self._due(n), None, n % self.track.idle_frames, waiting=condition, said=said)
                self._wait = None
                if decision is Decision.TIMEOUT and condition.on_timeout != "continue":
                    return self._finish(n, _timeout_end(condition, now))
                self._turn = Turn.begin(now, app_playing)
            self._index += 1
            self._start_tick = n

    def _live_tick(self, n: int, now: int) -> Tick | None:
        """Tick ``n`` of the live steps; None when they are over and the script goes on from this very tick."""
        early: tuple[str, ...] = ()
        early_said: tuple[tuple[str, bool], ...] = ()
        while True:
            if self._playing is not None:
                if n < self._playing_until:
                    said = early_said + (self._said_by(n) if self._said else ())
                    return Tick(now, early + self._due(n), self._playing, n - self._playing_from, said=said)
                self._playing = None
            if not self._live:
                return self._resume(n, now)
            position = self._live.popleft()
            if self._paused is None and self.end is None:
                # The script's digits and words that finished just before the pause were heard: report them now.
                early, early_said = self._due(n), self._said_by(n) if self._said else ()
                self._paused, self._dtmf, self._said = (n, self._dtmf, self._said), [], []
                self._paused_in_wait = self._wait is not None
            if position is None:
                self._paused = None  # the script's tones cut short by the hangup were never heard whole
                end = self._finish(n, End("hangup", now, cause="normal_clearing"))
                return end._replace(dtmf=early + end.dtmf, said=early_said + end.said)
            self._playing, self._playing_from = position, n
            self._playing_until = n + self.track.frames_in(position)
            self._schedule_reports(self.track.audio(position), n)

    def _resume(self, n: int, now: int) -> Tick | None:
        """The live steps are over at tick ``n``: the paused script goes on, everything of it that much later."""
        if self._paused is None:  # the script had ended before them: report what is left of theirs, and the end
            assert self.end is not None
            due, said = tuple(digit for _, digit in self._dtmf), tuple((t, f) for _, t, f in self._said)
            self._dtmf, self._said = [], []
            return Tick(now, due, end=self.end, said=said)
        paused_at, dtmf, words = self._paused
        self._paused, shift = None, n - paused_at
        self._start_tick += shift
        if not self._paused_in_wait:
            # Paused while the caller talked: what the app did meanwhile answered the live steps, not what the
            # caller says next, so the script's next wait sees only what the app does from now on.
            self._turn = Turn.begin(now, self._turn.playing)
        wait = self._wait
        if wait is not None:  # its timeout, and after_ms once met, count without the pause
            met = wait.met_ms + shift * FRAME_MS if wait.met_ms is not None else None
            self._wait = replace(wait, begun_ms=wait.begun_ms + shift * FRAME_MS, met_ms=met)
        # Stable sorts by tick: the script's reports first, then the live steps' last ones (due by now).
        self._dtmf = sorted([(at + shift, d) for at, d in dtmf] + self._dtmf, key=lambda item: item[0])
        self._said = sorted([(at + shift, t, f) for at, t, f in words] + self._said, key=lambda item: item[0])
        return None

    def quiet_ticks(self) -> int:
        """How many ticks from now pass with nothing to report (no digit, no end) if the app plays nothing and
        echoes no mark: ``skip`` may jump over them. Only within the current segment; 0 when unsure."""
        n, index = self.ticks, self._index
        if self.end is not None or self._turn.playing or index >= len(self.track.segments) or self.is_live:
            return 0
        segment = self.track.segments[index]
        if isinstance(segment, AudioSegment):
            if n == self._start_tick:
                return 0  # its first tick schedules its digits
            left = self.track.segment_frames[index] - (n - self._start_tick)
        elif isinstance(segment, WaitSegment) and self._wait is not None and self._wait.met_ms is None:
            condition, turn = segment.condition, self._turn
            if turn.started_ms is not None or turn.marks or turn.clips or turn.keys:
                return 0  # the app's earlier audio, marks or commands may still meet it
            left = self._wait.begun_ms // FRAME_MS + condition.timeout_ticks - n
        else:
            return 0
        if self._dtmf:
            left = min(left, self._dtmf[0][0] - n)
        if self._said:
            left = min(left, self._said[0][0] - n)
        return max(0, left)

    def voiced_ahead(self, ticks: int) -> NDArray[np.bool_]:
        """Whether the caller's frame is a voice in each of the next ``ticks`` quiet ticks (``quiet_ticks``):
        what ``skip`` jumps over, for the conversation metrics."""
        n, index, track = self.ticks, self._index, self.track
        if ticks <= 0 or self.end is not None or index >= len(track.segments):
            return np.zeros(max(ticks, 0), dtype=np.bool_)
        if isinstance(track.segments[index], AudioSegment):
            offset = n - self._start_tick
            return track.voiced[index][offset : offset + ticks]
        return track.idle_voiced[np.arange(n, n + ticks) % track.idle_frames]

    def skip(self, ticks: int) -> None:
        """Jump ``ticks`` quiet ticks (at most ``quiet_ticks()``): the same state as that many silent advances."""
        if not 0 <= ticks <= self.quiet_ticks():
            raise ValueError(f"cannot skip {ticks} ticks; {self.quiet_ticks()} are quiet")
        self.ticks += ticks

    def _schedule_reports(self, segment: AudioSegment, n: int) -> None:
        # Reported when the tone has finished, as a detector on the call would: the tick after its last sample.
        for event in segment.dtmf:
            self._dtmf.append((n + math.ceil((event.at_ms + event.duration_ms) / FRAME_MS), event.digit))
        # Words, like a recogniser's results: a partial one half-way through, the final one once said.
        for speech in segment.speech:
            half = n + math.ceil((speech.at_ms + speech.duration_ms / 2) / FRAME_MS)
            self._said.append((half, _first_half(speech.text), False))
            self._said.append((n + math.ceil((speech.at_ms + speech.duration_ms) / FRAME_MS), speech.text, True))
        self._said.sort(key=lambda said: said[0])

    def _said_by(self, n: int) -> tuple[tuple[str, bool], ...]:
        due = tuple((text, final) for at, text, final in self._said if at <= n)
        if due:
            self._said = [said for said in self._said if said[0] > n]
        return due

    def _due(self, n: int) -> tuple[str, ...]:
        if not self._dtmf or self._dtmf[0][0] > n:
            return ()
        due = tuple(digit for at, digit in self._dtmf if at <= n)
        self._dtmf = [(at, digit) for at, digit in self._dtmf if at > n]
        return due

    def _finish(self, n: int, end: End) -> Tick:
        self.end = end
        due = tuple(digit for _, digit in self._dtmf)  # every scheduled tone has finished by now
        self._dtmf = []
        said = self._said_by(n) if self._said else ()  # words cut off by the end were never all heard
        self._said = []
        return Tick(end.at_ms, due, end=end, said=said)


def _first_half(text: str) -> str:
    words = text.split()
    return " ".join(words[: max(1, len(words) // 2)])


# --- rendering for a mute app ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: comparing numpy arrays has no single truth value
class RenderedTrack:
    pcm: NDArray[np.int16]
    sample_rate: int
    dtmf: tuple[DtmfEvent, ...]
    end: End | None = None  # how the script ended (None: rendered from plain audio steps)
    timeouts: int = 0  # the waits that ran to their timeout before the end (not those the end cut off)

    @property
    def duration_ms(self) -> float:
        return len(self.pcm) * 1000 / self.sample_rate


def render(track: CompiledTrack) -> RenderedTrack:
    """What an app that never plays audio nor echoes a mark receives: each wait runs to its timeout."""
    fs, tick = track.frame_samples, 0
    parts: list[NDArray[np.int16]] = []
    events: list[DtmfEvent] = []
    end: End | None = None
    timeouts = 0
    for index, segment in enumerate(track.segments):
        if isinstance(segment, AudioSegment):
            parts.append(segment.pcm)
            events.extend(DtmfEvent(e.at_ms + tick * FRAME_MS, e.digit, e.duration_ms) for e in segment.dtmf)
            tick += track.frames_in(index)
            continue
        if isinstance(segment, HangupSegment):
            end = End("hangup", tick * FRAME_MS, cause=segment.cause)
            break
        condition = segment.condition
        ticks = condition.timeout_ticks
        idle = np.arange(tick, tick + ticks) % track.idle_frames
        parts.append(track.idle.reshape(-1, fs)[idle].reshape(-1))
        tick += ticks
        timeouts += 1
        if condition.on_timeout != "continue":
            end = _timeout_end(condition, tick * FRAME_MS)
            break
    else:
        end = End("completed", -(-sum(len(p) for p in parts) // fs) * FRAME_MS)
    pcm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return RenderedTrack(pcm, track.sample_rate, tuple(events), end, timeouts)


def render_track(steps: Sequence[Step], sample_rate: int, mix: Mix | None = None) -> RenderedTrack:
    """The track as an app that never answers hears it: each ``wait_for`` lasts its timeout, ``hangup`` ends it.

    Plain audio steps render back to back, exactly; DTMF events are offset to where their step starts. A ``Track``
    brings its own mix; an explicit ``mix`` wins over it.
    """
    return render(compile_track(steps, sample_rate, mix))


def _timeout_end(condition: WaitFor, at_ms: int) -> End:
    if condition.on_timeout == "hangup":
        return End("hangup", at_ms, cause="normal_clearing")
    error = f"{condition.origin}: timed out after {condition.timeout_ms} ms waiting for {condition.expecting()}"
    return End("failed", at_ms, error=error)
