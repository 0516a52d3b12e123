"""Media faults (docs/faults.md): what a stream's fault rules do to the frames it writes.

A rule with ``"target": "media"`` is asked about each media frame a stream is about to write (one per track
per 20 ms tick), or, for ``drop`` and ``stop``, once when the stream's media reaches ``at_ms``::

    {"target": "media", "kind": "loss", "probability": 0.05, "burst": 3}
    {"target": "media", "kind": "jitter", "every": 100, "jitter_ms": 200}
    {"target": "media", "kind": "drop", "at_ms": 5000}

Per frame: ``loss`` (the frame and the next ``burst - 1`` of its track are not sent; their
``sequence_number``, ``chunk`` and ``timestamp`` are used up all the same, so the next frame shows the gap),
``reorder`` (the frame goes after its track's next one), ``duplicate`` (it goes twice), ``error`` (an
``error`` frame follows it), ``jitter`` (from this frame on, everything the stream writes is held back for
1 to ``jitter_ms / 20`` ticks, drawn from the namespace's random stream, then written in one burst: late,
with the counters it would have had). One of loss, reorder and duplicate at most per frame. The frames of a
loss burst and the frame a reordered one goes after are not asked again, so ``every`` counts the others.

Pure: the session (``media/session.py``) writes what ``shape`` returns and carries out a drop or a stop.
"""

from __future__ import annotations

import logging
import random

from emulator.calls.models import StreamRecord
from emulator.faults.rules import FaultBook, FaultRule
from emulator.media import frames
from emulator.timestamps import utc_now
from emulator.timing import FRAME_MS

log = logging.getLogger(__name__)

FRAME_KINDS = ("loss", "reorder", "duplicate", "error", "jitter")
_WHILE_HELD = ("loss", "reorder", "duplicate", "error")  # a jitter hold does not start inside another
_ONE_OF = ("loss", "reorder", "duplicate")  # what happens to the frame itself: one of them at most
POINT_KINDS = ("drop", "stop")
DEFAULT_JITTER_MS = 100
# The error frame's default: Telnyx's code for an unknown error on the stream; a known code keeps its title.
DEFAULT_ERROR = (100002, "An unknown error occurred on the stream.")
ERROR_TITLES = dict([(100002, "unknown_error"), frames.MALFORMED, frames.INVALID_MEDIA, frames.RATE_LIMITED])


class MediaFaults:
    """One stream's side of its namespace's fault rules: shapes each tick's frames before they are written."""

    def __init__(self, book: FaultBook, record: StreamRecord) -> None:
        self.book = book
        self.record = record
        spec = record.spec
        self._context: dict[str, str | None] = {
            "call_control_id": spec.call_control_id,
            "stream_id": spec.stream_id,
            "scenario": spec.scenario,
        }
        self.holding = False  # frames kept back (lost burst, reordered, jitter): shape runs even without rules
        self._losing: dict[str, int] = {}  # track -> frames still to lose in the burst
        self._swapped: dict[str, str] = {}  # track -> a reordered frame, to go after the track's next one
        self._held: list[str] = []  # jitter: everything written since the hold began
        self._release = -1  # jitter: the media tick the held frames go out with
        self._reached: set[str] = set()  # drop/stop rules this stream has reached (each is asked once)
        self.end: FaultRule | None = None  # a drop or stop rule that fired: the session ends the stream
        self.dropped: str | None = None  # a drop's detail, for the stream's error
        self._rng: random.Random | None = None  # made when a media rule is first asked: most streams never are

    @property
    def rng(self) -> random.Random:
        """The stream's own random stream: what it draws does not depend on other streams' frames (a seed replays)."""
        if self._rng is None:
            self._rng = self.book.new_random(f"media:{self.record.spec.stream_id}")
        return self._rng

    def shape(self, batch: list[str], tracks: tuple[str, ...], n: int, last_sequence: int) -> list[str]:
        """What to write now of a tick's frames: ``batch`` ends with the tick's media frames, one per track of
        ``tracks`` (none for a tick without media), the last numbered ``last_sequence``; ``n`` counts the
        media ticks before this one. Sets ``end`` when a drop or stop fires here."""
        head = len(batch) - len(tracks)
        if tracks and self.book.has("media") and self._reached_point(n * FRAME_MS):
            self._held += batch[:head]  # a stop sends what was due before it; a drop loses it all
            self.record.media_frames_sent -= len(tracks)
            return []
        out = batch[:head]
        first = last_sequence - len(tracks) + 1
        for i, track in enumerate(tracks):
            self._frame(out, batch[head + i], track, first + i, n)
        if self._release >= 0:
            self._held += out
            if n < self._release or not tracks:
                self.holding = True
                return []
            out, self._held, self._release = self._held, [], -1
        self.holding = bool(self._losing or self._swapped)
        return out

    def leftovers(self) -> list[str]:
        """Frames still kept back when the stream stops: they go out (late) before ``stop``."""
        late = self._held + list(self._swapped.values())
        self._held, self._swapped, self._release, self.holding = [], {}, -1, False
        return late

    def _frame(self, out: list[str], frame: str, track: str, sequence: int, n: int) -> None:
        record = self.record
        losing = self._losing.pop(track, 0)
        if losing:
            if losing > 1:
                self._losing[track] = losing - 1
            record.media_frames_sent -= 1
            return
        swapped = self._swapped.pop(track, None)
        if swapped is not None:
            out += (frame, swapped)
            return
        if not self.book.has("media"):
            out.append(frame)
            return
        kinds = _WHILE_HELD if self._release >= 0 else FRAME_KINDS
        fired = {rule.kind: rule for rule in self.book.fire("media", kinds, _ONE_OF, rng=self.rng, **self._context)}
        if "jitter" in fired:
            rule = fired["jitter"]
            ticks = self.rng.randint(1, rule.params.get("jitter_ms", DEFAULT_JITTER_MS) // FRAME_MS)
            self._release = n + ticks
            self._note(rule, f"frames from sequence {sequence} held back {ticks * FRAME_MS} ms, then sent in one burst")
        if "loss" in fired:
            rule = fired["loss"]
            burst = rule.params.get("burst", 1)
            if burst > 1:
                self._losing[track] = burst - 1
            record.media_frames_sent -= 1
            what = f"{burst} {track} frame{'s' if burst > 1 else ''}"
            self._note(rule, f"{what} lost from sequence {sequence} (chunk {n + 1})")
        elif "reorder" in fired:
            self._swapped[track] = frame
            self._note(fired["reorder"], f"{track} frame {sequence} sent after the next one")
        elif "duplicate" in fired:
            out += (frame, frame)
            record.media_frames_sent += 1
            self._note(fired["duplicate"], f"{track} frame {sequence} sent twice")
        else:
            out.append(frame)
        if "error" in fired:
            rule = fired["error"]
            code = rule.params.get("code", DEFAULT_ERROR[0])
            detail = rule.params.get("detail", DEFAULT_ERROR[1])
            out.append(frames.error_frame(record.spec.stream_id, code, ERROR_TITLES.get(code, "unknown_error"), detail))
            record.frames_sent -= 1  # frames_sent counts no error frame: this one is counted when written
            self._note(rule, f"error frame {code} sent after {track} frame {sequence}")

    def _reached_point(self, ms: int) -> bool:
        """A drop or stop rule whose ``at_ms`` the stream's media has reached, asked once per stream."""
        for rule in self.book.rules:
            if rule.target != "media" or rule.kind not in POINT_KINDS or rule.id in self._reached:
                continue
            if rule.params["at_ms"] <= ms and rule.matches("media", self._context):
                self._reached.add(rule.id)
                if self.book.decide(rule, self.rng):
                    self.end = rule
                    if rule.kind == "drop":
                        self._held, self._swapped = [], {}  # lost with the connection
                        self.dropped = f"the emulator dropped the connection without a close frame (fault {rule.id})"
                    what = "dropped without a close frame" if rule.kind == "drop" else "stopped (stop, close 1000)"
                    self._note(rule, f"stream {what} at {ms} ms of its media")
                    return True
        return False

    def _note(self, rule: FaultRule, detail: str) -> None:
        record = self.record
        record.faults[rule.kind] = record.faults.get(rule.kind, 0) + 1
        self.book.note(rule, utc_now(), record.spec.call_control_id, detail)
        log.info("stream %s: fault %s: %s", record.spec.stream_id, rule.id, detail)
