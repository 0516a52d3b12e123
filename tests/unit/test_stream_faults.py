"""MediaFaults, without a socket: what each media fault does to the frames of a stream's ticks."""

from __future__ import annotations

from typing import Any

from emulator.calls.models import Call, CallState, Direction, StreamRecord, StreamSpec, StreamTrack
from emulator.faults.rules import FaultBook
from emulator.media.stream_faults import MediaFaults

TRACKS = ("inbound", "outbound")


def faults(*rules: dict[str, Any]) -> MediaFaults:
    spec = StreamSpec("s-1", "v3:c", "leg", "session", "user", "+1", "+2", "ws://x", StreamTrack.BOTH, "PCMU")
    call = Call("v3:c", "leg", "session", "conn", "+1", "+2", Direction.INCOMING, CallState.ANSWERED)
    book = FaultBook.seeded(1)
    for rule in rules:
        book.add({"target": "media", **rule})
    return MediaFaults(book, StreamRecord(spec, call))


def run(media: MediaFaults, ticks: int, tracks: tuple[str, ...] = TRACKS) -> list[list[str]]:
    """What is written at each tick: frames named track:chunk:sequence (sequence counts from 2, after start)."""
    written, sequence = [], 1
    for n in range(ticks):
        batch = []
        for track in tracks:
            sequence += 1
            batch.append(f"{track[:2]}{n + 1}:{sequence}")
        written.append(media.shape(batch, tracks, n, sequence))
    return written


def test_a_loss_burst_takes_frames_of_its_track_only():
    media = faults({"kind": "loss", "every": 3, "burst": 2, "times": 1})
    assert run(media, 3) == [["in1:2", "ou1:3"], ["ou2:5"], ["ou3:7"]]  # the 3rd frame asked (in2) and in3 lost
    assert media.record.faults == {"loss": 1} and not media.holding


def test_jitter_holds_whole_ticks_and_writes_them_with_the_tick_it_ends_on():
    media = faults({"kind": "jitter", "jitter_ms": 60, "times": 1})
    held = media.book.rules[0]
    written = run(media, 5, ("inbound",))
    assert held.fired == 1
    ticks = int(media.book.injected[0].detail.split("held back ")[1].split(" ms")[0]) // 20
    assert written[0] == [] and written[ticks] == [f"in{n + 1}:{n + 2}" for n in range(ticks + 1)]
    assert all(batch == [f"in{n + 1}:{n + 2}"] for n, batch in enumerate(written) if n > ticks)


def test_held_and_reordered_frames_go_out_before_stop():
    media = faults({"kind": "reorder", "times": 1})
    assert run(media, 1, ("inbound",)) == [[]]
    assert media.holding and media.leftovers() == ["in1:2"] and not media.holding


def test_a_stop_point_keeps_what_came_before_the_media_and_asks_once():
    media = faults({"kind": "stop", "at_ms": 20})
    assert media.shape(["in1:2"], ("inbound",), 0, 2) == ["in1:2"]
    assert media.shape(["mark:3", "in2:4"], ("inbound",), 1, 4) == []
    assert media.end is not None and media.end.kind == "stop" and media.leftovers() == ["mark:3"]
    assert media.book.rules[0].matched == 1
