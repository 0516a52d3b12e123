"""Turn-taking, the pure pieces a caller's wait is decided with (``emulator.scenarios.cursor`` walks the script).

All in media time (milliseconds since the call's media began, tick ``n`` at ``n * 20``), so they behave the same
at every ``--speed``:

* ``Turn`` — what the app did since the caller's current turn began (since the last wait resolved, or the
  stream started): when it first started playing audio, whether it plays now, when it last stopped, and which
  marks it echoed. Audio the app played while the caller was still talking counts: a reply that starts during
  the caller's last words is still the reply.
* ``WaitState`` — one wait: ``feed(turn, now_ms)`` answers ``WAIT``, ``RESUME`` or ``TIMEOUT``. Once the
  condition is met, the moment is latched and ``after_ms`` counts from it; the timeout no longer applies.

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
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from emulator.scenarios.steps import APP_AUDIO_START, APP_DTMF, CLIP_EVENTS, MARK, WaitFor

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
