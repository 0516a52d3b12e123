"""DigitGather: collecting the caller's keys for gather / gather_using_speak / gather_using_audio. Pure.

Fed once per tick with the media time and the digits the caller finished pressing, it says when the gather
is over and how, with Telnyx's statuses:

- ``valid``: ``maximum_digits`` keys, or the ``terminating_digit`` after at least ``minimum_digits``, or a pause
  of ``inter_digit_timeout_millis`` after at least ``minimum_digits``;
- ``invalid``: a key outside ``valid_digits``, or the terminating digit (or a pause) before ``minimum_digits``;
- ``timeout``: no key within ``initial_timeout_millis`` of the prompt's end (of the gather's start without a
  prompt), or ``timeout_millis`` in all;
- ``cancelled`` (gather_stop) and ``call_hangup`` are decided by whoever ends it.

A key pressed while the prompt plays counts, and stops the prompt (the engine does that).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class GatherRules:
    minimum_digits: int = 1
    maximum_digits: int = 128
    terminating_digit: str = "#"
    valid_digits: str = "0123456789#*"
    timeout_ms: int = 60_000
    initial_timeout_ms: int = 5000
    inter_digit_timeout_ms: int = 5000


@dataclass(slots=True)
class DigitGather:
    key: str  # the gather's id on the call (its prompt clip shares it)
    rules: GatherRules
    started_ms: int
    prompt: str | None = None  # the prompt clip's key, while it may still play
    digits: str = ""
    prompt_ended_ms: int | None = None
    last_digit_ms: int | None = None
    result: tuple[str, str] | None = field(default=None)  # (status, digits) once over

    def feed(self, now_ms: int, digits: tuple[str, ...], prompt_playing: bool) -> tuple[str, str] | None:
        """One tick; the result (status, digits) when the gather ends at this tick."""
        if self.result is not None:
            return None
        rules = self.rules
        for digit in digits:
            self.last_digit_ms = now_ms
            if digit == rules.terminating_digit:
                return self._end("valid" if len(self.digits) >= rules.minimum_digits else "invalid")
            if digit not in rules.valid_digits:
                self.digits += digit
                return self._end("invalid")
            self.digits += digit
            if len(self.digits) >= rules.maximum_digits:
                return self._end("valid")
        if prompt_playing and not self.digits:
            return None  # the caller is still listening to the prompt
        if self.prompt_ended_ms is None:
            self.prompt_ended_ms = now_ms
        if now_ms - self.started_ms >= rules.timeout_ms:
            return self._end("valid" if len(self.digits) >= rules.minimum_digits else "timeout")
        if self.last_digit_ms is None:
            if now_ms - self.prompt_ended_ms >= rules.initial_timeout_ms:
                return self._end("timeout")
        elif now_ms - self.last_digit_ms >= rules.inter_digit_timeout_ms:
            return self._end("valid" if len(self.digits) >= rules.minimum_digits else "invalid")
        return None

    def stop(self, status: str) -> tuple[str, str]:
        """Ended from outside: gather_stop (cancelled) or the call's end (call_hangup)."""
        return self._end(status)

    def _end(self, status: str) -> tuple[str, str]:
        self.result = (status, self.digits)
        return self.result
