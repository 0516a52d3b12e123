"""A call's conversation metrics as a test reads them: ``metrics.turns[0].response_ms`` (docs/metrics.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TurnMetrics:
    start_ms: int  # the caller's first voiced tick of the turn, from the answer
    end_ms: int  # the end of its last voiced tick
    response_ms: int | None  # to the app's first voiced tick after it; None: unanswered


@dataclass(frozen=True, slots=True)
class BargeInMetrics:
    at_ms: int  # the caller started talking over the app
    yield_ms: int | None  # how long the app's audio went on; None: it never stopped
    cleared: bool  # the app sent clear meanwhile


@dataclass(frozen=True, slots=True)
class CallMetrics:
    call_control_id: str
    is_alive: bool  # False once the call ended: the figures are final
    media_ms: int
    first_audio_ms: int | None
    turns: tuple[TurnMetrics, ...]
    unanswered_turns: int
    talk_over_ms: int
    barge_ins: tuple[BargeInMetrics, ...]
    dead_air_ms: int
    max_buffered_ms: int
    underruns: int  # the app's stream audio ran dry for 200 ms or less, then went on: it sent too slowly
    underrun_ms: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallMetrics:
        return cls(
            call_control_id=data["call_control_id"],
            is_alive=data["is_alive"],
            media_ms=data["media_ms"],
            first_audio_ms=data["first_audio_ms"],
            turns=tuple(TurnMetrics(**turn) for turn in data["turns"]),
            unanswered_turns=data["unanswered_turns"],
            talk_over_ms=data["talk_over_ms"],
            barge_ins=tuple(BargeInMetrics(**barge) for barge in data["barge_ins"]),
            dead_air_ms=data["dead_air_ms"],
            max_buffered_ms=data["max_buffered_ms"],
            underruns=data["underruns"],
            underrun_ms=data["underrun_ms"],
        )
