"""ConversationMeter: a voice bot's timing, measured from a call's own timeline (pure; issue 15's metrics).

Fed once per 20 ms tick with what each side did in that tick — the caller (the scenario's inbound audio)
voiced or not, the app (its stream audio, speak and playback) voiced or not, whether the app sent ``clear``,
how much of its audio waited to be played — it keeps the few counters the metrics need, so a call of any
length costs O(1) memory. Everything is in media time: the same at every ``--speed``.

Definitions (docs/metrics.md says them for users):

- a tick is *voiced* when its frame's mean square is over -40 dBFS (``emulator/levels.py``);
- a caller *turn* is a run of voiced caller ticks whose gaps are shorter than ``HANGOVER_MS``; it *ends* at
  its last voiced tick, known once ``HANGOVER_MS`` of caller silence follows (or the call ends);
- ``first_audio_ms``: from the start of the media (the answer) to the app's first voiced tick;
- a turn's ``response_ms``: from its end to the app's first voiced tick after it; None (unanswered) when the
  caller's next turn starts, or the call ends, first. App audio in a pause shorter than the hangover, after
  which the caller goes on, is no reply (it is talk-over once both speak);
- ``talk_over_ms``: ticks both sides were voiced;
- a *barge-in*: the caller starts a turn while the app is talking (voiced in the tick before); ``yield_ms``
  is how long the app went on (to its first silent tick; None if it never stopped), ``cleared`` whether the
  app sent ``clear`` in that time;
- ``dead_air_ms``: the longest run of ticks in which neither side was voiced;
- ``max_buffered_ms``: the most app audio waiting to be played at any tick (how far ahead it sent);
- an *underrun*: the app's stream audio stopped playing for fewer than ``UNDERRUN_MS`` and then went on: it
  ran out in mid-flow, because the app sends slower than real time (or just in time, with no margin);
  ``underruns`` counts them, ``underrun_ms`` adds up their gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.timing import FRAME_MS

HANGOVER_MS = 500  # caller silence that ends a turn: shorter pauses are within one sentence
_HANGOVER_TICKS = HANGOVER_MS // FRAME_MS
# A gap in the app's stream audio up to this long is a stall, not a pause: a TTS engine leaves no holes
# inside an utterance, and sentences are at least this far apart.
UNDERRUN_MS = 200
_UNDERRUN_TICKS = UNDERRUN_MS // FRAME_MS


@dataclass(slots=True)
class Turn:
    start_ms: int  # the caller's first voiced tick
    end_ms: int  # the end of its last voiced tick
    response_ms: int | None = None  # None: unanswered (so far)

    def as_json(self) -> dict[str, Any]:
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, "response_ms": self.response_ms}


@dataclass(slots=True)
class BargeIn:
    at_ms: int  # the caller's first voiced tick
    yield_ms: int | None = None  # how long the app's audio went on; None: it never stopped
    cleared: bool = False  # the app sent clear before its audio stopped

    def as_json(self) -> dict[str, Any]:
        return {"at_ms": self.at_ms, "yield_ms": self.yield_ms, "cleared": self.cleared}


@dataclass(slots=True)
class ConversationMeter:
    ticks: int = 0
    first_audio_tick: int | None = None
    turns: list[Turn] = field(default_factory=list)
    barge_ins: list[BargeIn] = field(default_factory=list)
    talk_over_ticks: int = 0
    dead_air_ticks: int = 0  # the longest run so far
    max_buffered_ms: int = 0
    underruns: int = 0
    underrun_ticks: int = 0
    _stream_gap: int = -1  # ticks since the app's stream audio last played; -1: none lately (or ever)
    _silent_run: int = 0  # ticks both sides have been silent, up to now
    _caller_quiet: int = 0  # caller silent ticks since its last voiced one
    _turn_open: bool = False  # a turn runs, or is within its hangover
    _app_was_voiced: bool = False
    _yielding: BargeIn | None = None  # a barge-in whose app audio still plays

    def feed(
        self, caller: bool, app: bool, *, cleared: bool = False, buffered_ms: int = 0, streamed: bool = False
    ) -> None:
        """One tick: each side voiced or not, whether the app sent clear, its audio buffered ahead, whether
        its streams' audio played in the tick (voiced or not: silence it sent is audio too)."""
        n = self.ticks
        self.ticks = n + 1
        if streamed:
            if self._stream_gap > 0:
                self.underruns += 1
                self.underrun_ticks += self._stream_gap
            self._stream_gap = 0
        elif self._stream_gap >= 0:
            self._stream_gap = self._stream_gap + 1 if self._stream_gap < _UNDERRUN_TICKS else -1
        if buffered_ms > self.max_buffered_ms:
            self.max_buffered_ms = buffered_ms
        if app and self.first_audio_tick is None:
            self.first_audio_tick = n
        if caller and app:
            self.talk_over_ticks += 1
        if caller or app:
            self._silent_run = 0
        else:
            self._silent_run += 1
            self.dead_air_ticks = max(self.dead_air_ticks, self._silent_run)
        self._barge(n, caller, app, cleared)
        self._turn(n, caller, app)
        self._app_was_voiced = app

    def feed_silent(self) -> None:
        """``feed(False, False)``: the usual tick, when neither side makes a sound; the same state, in fewer steps."""
        self.ticks += 1
        if self._stream_gap >= 0:
            self._stream_gap = self._stream_gap + 1 if self._stream_gap < _UNDERRUN_TICKS else -1
        run = self._silent_run = self._silent_run + 1
        if run > self.dead_air_ticks:
            self.dead_air_ticks = run
        yielding = self._yielding
        if yielding is not None:  # the app has stopped: the barge-in's yield ends here
            yielding.yield_ms = (self.ticks - 1) * FRAME_MS - yielding.at_ms
            self._yielding = None
        quiet = self._caller_quiet = self._caller_quiet + 1
        if self._turn_open and quiet >= _HANGOVER_TICKS:
            self._turn_open = False
        self._app_was_voiced = False

    @property
    def yielding(self) -> bool:
        """A barge-in is running: whether the app clears now matters."""
        return self._yielding is not None

    def feed_run(self, caller: Sequence[bool], app: Sequence[bool]) -> None:
        """Ticks jumped over (a call nobody listens to, in a quiet stretch): each side's voice, tick by tick."""
        for c, a in zip(caller, app, strict=True):
            self.feed(bool(c), bool(a))

    def _turn(self, n: int, caller: bool, app: bool) -> None:
        if caller:
            if self._turn_open:  # the same turn goes on: app audio in its pause was no reply
                turn = self.turns[-1]
                turn.end_ms, turn.response_ms = (n + 1) * FRAME_MS, None
            else:  # a new turn; the one before, if still unanswered, stays so
                self.turns.append(Turn(n * FRAME_MS, (n + 1) * FRAME_MS))
                self._turn_open = True
            self._caller_quiet = 0
            return
        self._caller_quiet += 1
        if self._turn_open and self._caller_quiet >= _HANGOVER_TICKS:
            self._turn_open = False
        if app and self.turns and self.turns[-1].response_ms is None:  # the app's first audio after the turn
            turn = self.turns[-1]
            turn.response_ms = n * FRAME_MS - turn.end_ms

    def _barge(self, n: int, caller: bool, app: bool, cleared: bool) -> None:
        yielding = self._yielding
        if yielding is not None:
            yielding.cleared = yielding.cleared or cleared
            if not app:
                yielding.yield_ms = n * FRAME_MS - yielding.at_ms
                self._yielding = None
        if caller and not self._turn_open and self._app_was_voiced and app and self._yielding is None:
            barge = BargeIn(n * FRAME_MS, cleared=cleared)
            self.barge_ins.append(barge)
            self._yielding = barge

    def as_json(self) -> dict[str, Any]:
        """The metrics, as ``GET /_emulator/calls/{id}/metrics`` shows them (a turn still open has its end
        so far; an app still talking over a barge-in has ``yield_ms`` None)."""
        return {
            "media_ms": self.ticks * FRAME_MS,
            "first_audio_ms": self.first_audio_tick * FRAME_MS if self.first_audio_tick is not None else None,
            "turns": [turn.as_json() for turn in self.turns],
            "unanswered_turns": sum(1 for turn in self.turns if turn.response_ms is None),
            "talk_over_ms": self.talk_over_ticks * FRAME_MS,
            "barge_ins": [barge.as_json() for barge in self.barge_ins],
            "dead_air_ms": self.dead_air_ticks * FRAME_MS,
            "max_buffered_ms": self.max_buffered_ms,
            "underruns": self.underruns,
            "underrun_ms": self.underrun_ticks * FRAME_MS,
        }
