"""Walking a compiled track: the pure turn-taking state machine the stream engine drives, and the render of what
an app that never answers receives.

A track is compiled once into segments (``segments``): audio, waits for the app, hang-ups. Turn-taking is
three pure pieces, all in media time (milliseconds since the stream's first frame, tick ``n`` at ``n * 20``), so
they behave the same at every ``--speed``:

* ``Turn`` — what the app did since the caller's current turn began (since the last wait resolved, or the
  stream started): when it first started playing audio, whether it plays now, when it last stopped, and which
  marks it echoed. Audio the app played while the caller was still talking counts: a reply that starts during
  the caller's last words is still the reply.
* ``WaitState`` — one wait: ``feed(turn, now_ms)`` answers ``WAIT``, ``RESUME`` or ``TIMEOUT``. Once the
  condition is met, the moment is latched and ``after_ms`` counts from it; the timeout no longer applies.
* ``ScriptCursor`` — walks a ``CompiledTrack``: ``advance(app_playing, marks)`` once per tick returns a ``Tick``
  saying which frame to send (a segment's frame, or an idle frame), which DTMF digits to report first, and when
  the script is over (``End``: completed, hangup with a cause, or failed with the wait that timed out).

The conditions, with ``now`` the current tick's time:

* ``app_audio_start`` — met at the first tick of the turn where the app is playing; resume ``after_ms`` later
  (barge-in: the caller starts talking while the app still plays).
* ``app_audio_end`` — the app has played in this turn and has now been quiet for ``silence_ms``: met at
  ``stopped + silence_ms``, where ``stopped`` is the first quiet tick.
* ``mark`` — the app's mark of that name was echoed in this turn; met at the echo.
* Not met within ``timeout_ms`` of the wait's first tick: ``TIMEOUT``, and ``on_timeout`` says what happens:
  ``continue`` (go on with the script), ``hangup`` (the caller hangs up, ``normal_clearing``) or ``fail`` (the
  script ends as failed, naming the wait). A wait whose condition already holds resumes on its first tick, so
  there is no gap at all.

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

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from emulator.scenarios.segments import AudioSegment, CompiledTrack, HangupSegment, WaitSegment, compile_track
from emulator.scenarios.steps import APP_AUDIO_START, APP_DTMF, CLIP_EVENTS, MARK, DtmfEvent, Mix, Step, WaitFor
from emulator.timing import FRAME_MS

# --- turn-taking -------------------------------------------------------------------------------------------------

# Something the app had the call play, as the caller heard it: (event, digits), e.g. ("speak_end", "") or
# ("dtmf", "12") once the app's tones for 1 and 2 have played.
AppEvent = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Turn:
    """What the app did since the caller's current turn began; see the module docstring."""

    started_ms: int | None = None  # the first tick of this turn where the app was playing
    playing: bool = False
    stopped_ms: int | None = None  # the first quiet tick after the app last played
    marks: tuple[tuple[str, int], ...] = ()  # (name, first echo) in echo order
    # What the call played on the app's command: (event, when first heard), e.g. ("speak_end", 1200).
    clips: tuple[tuple[str, int], ...] = ()
    keys: tuple[tuple[str, int], ...] = ()  # the app's DTMF keys, each with when its tones had played

    @classmethod
    def begin(cls, now_ms: int, app_playing: bool) -> Turn:
        """A new turn; audio already playing at its start counts as starting then."""
        return cls(started_ms=now_ms if app_playing else None, playing=app_playing)

    def observe(
        self, now_ms: int, app_playing: bool, marks: Iterable[str] = (), heard: Sequence[AppEvent] = ()
    ) -> Turn:
        # Called every 20 ms for every call; most ticks change nothing (the app keeps playing or stays
        # quiet, no mark echoed, nothing started or ended), and those return at once.
        if not marks and not heard and app_playing is self.playing and (not app_playing or self.started_ms is not None):
            return self
        started = now_ms if app_playing and self.started_ms is None else self.started_ms
        stopped = None if app_playing else (now_ms if self.playing else self.stopped_ms)
        known = {name for name, _ in self.marks}
        new = tuple((name, now_ms) for name in dict.fromkeys(marks) if name not in known)
        clips, keys = self.clips, self.keys
        for event, digits in heard:
            if event == APP_DTMF:
                keys += tuple((digit, now_ms) for digit in digits)
            elif all(name != event for name, _ in clips):
                clips += ((event, now_ms),)
        if (started, app_playing, stopped, clips, keys) == (
            self.started_ms,
            self.playing,
            self.stopped_ms,
            self.clips,
            self.keys,
        ) and not new:
            return self
        return Turn(started, app_playing, stopped, self.marks + new, clips, keys)

    def mark_ms(self, name: str) -> int | None:
        return next((at for mark, at in self.marks if mark == name), None)

    def clip_ms(self, event: str) -> int | None:
        return next((at for name, at in self.clips if name == event), None)

    def keys_ms(self, digits: str | None) -> int | None:
        """When the app had sent ``digits`` in a row (any key: None), by the last of them."""
        if not self.keys:
            return None
        if digits is None:
            return self.keys[0][1]
        sent = "".join(key for key, _ in self.keys)
        found = sent.find(digits)
        return None if found < 0 else self.keys[found + len(digits) - 1][1]


class Decision(enum.Enum):
    WAIT = "wait"  # keep waiting: send an idle frame
    RESUME = "resume"  # go on with the script at this very tick
    TIMEOUT = "timeout"  # timeout_ms passed and the condition was not met: do what on_timeout says


@dataclass(frozen=True, slots=True)
class WaitState:
    condition: WaitFor
    begun_ms: int
    met_ms: int | None = None  # latched when the condition is first met

    def feed(self, turn: Turn, now_ms: int) -> tuple[WaitState, Decision]:
        state = self
        if state.met_ms is None:
            met = _met_at(self.condition, turn, now_ms)
            if met is not None:
                state = replace(self, met_ms=met)
        if state.met_ms is not None:
            return state, Decision.RESUME if now_ms >= state.met_ms + self.condition.after_ms else Decision.WAIT
        if now_ms - self.begun_ms >= self.condition.timeout_ms:
            return state, Decision.TIMEOUT
        return state, Decision.WAIT


def _met_at(condition: WaitFor, turn: Turn, now_ms: int) -> int | None:
    if condition.event == APP_AUDIO_START:
        return turn.started_ms
    if condition.event == MARK:
        assert condition.mark is not None
        return turn.mark_ms(condition.mark)
    if condition.event == APP_DTMF:
        return turn.keys_ms(condition.digits)
    if condition.event in CLIP_EVENTS:
        return turn.clip_ms(condition.event)
    if turn.started_ms is None or turn.playing or turn.stopped_ms is None:
        return None
    met = turn.stopped_ms + condition.silence_ms
    return met if now_ms >= met else None


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
    segment: int | None = None  # the AudioSegment playing (index into segments), or None: an idle frame
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

    def advance(self, app_playing: bool = False, marks: Iterable[str] = (), heard: Sequence[AppEvent] = ()) -> Tick:
        n = self.ticks
        self.ticks += 1
        now = n * FRAME_MS
        self._turn = self._turn.observe(now, app_playing, marks, heard)
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

    def quiet_ticks(self) -> int:
        """How many ticks from now pass with nothing to report (no digit, no end) if the app plays nothing and
        echoes no mark: ``skip`` may jump over them. Only within the current segment; 0 when unsure."""
        n, index = self.ticks, self._index
        if self.end is not None or self._turn.playing or index >= len(self.track.segments):
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
