"""ConversationMeter on synthetic timelines whose answers are known: each string is one side, one character per
20 ms tick ('#' voiced, '.' silent)."""

from __future__ import annotations

import random

from emulator.media.conversation import HANGOVER_MS, UNDERRUN_MS, ConversationMeter


def metered(caller: str, app: str, *, cleared_at: int | None = None, buffered: list[int] | None = None) -> dict:
    meter = ConversationMeter()
    for n, (c, a) in enumerate(zip(caller, app, strict=True)):
        cleared = cleared_at == n
        meter.feed(c == "#", a == "#", cleared=cleared, buffered_ms=buffered[n] if buffered else 0)
    return meter.as_json()


def test_first_audio_response_and_dead_air():
    # The bot greets after 200 ms; the caller answers 300 ms after it; the bot replies 400 ms later.
    caller = "." * 10 + "." * 10 + "." * 15 + "#" * 20 + "." * 20 + "." * 30 + "." * 5
    app = "." * 10 + "#" * 10 + "." * 15 + "." * 20 + "." * 20 + "#" * 30 + "." * 5
    m = metered(caller, app)
    assert m["first_audio_ms"] == 200
    assert m["turns"] == [{"start_ms": 700, "end_ms": 1100, "response_ms": 400}]
    assert m["unanswered_turns"] == 0 and m["talk_over_ms"] == 0
    assert m["dead_air_ms"] == 400  # the 20 silent ticks before the reply (the 15 before the caller are fewer)
    assert m["media_ms"] == len(caller) * 20


def test_a_pause_shorter_than_the_hangover_is_one_turn_and_audio_in_it_is_no_reply():
    pause = HANGOVER_MS // 20 - 5
    caller = "#" * 10 + "." * pause + "#" * 10 + "." * 40
    app = "." * 10 + "." * 5 + "#" * 3 + "." * (pause - 8) + "." * 10 + "." * 10 + "#" * 30
    m = metered(caller, app)
    assert m["turns"] == [{"start_ms": 0, "end_ms": (20 + pause) * 20, "response_ms": 200}]
    assert m["talk_over_ms"] == 0


def test_a_turn_the_app_never_answers_before_the_next_one_stays_unanswered():
    caller = "#" * 10 + "." * 40 + "#" * 10 + "." * 5
    app = "." * 65
    m = metered(caller, app)
    assert [t["response_ms"] for t in m["turns"]] == [None, None] and m["unanswered_turns"] == 2
    assert m["first_audio_ms"] is None


def test_a_barge_in_measures_how_long_the_app_talked_on_and_whether_it_cleared():
    # The app talks; the caller starts over it at tick 20; the app clears at 23 and is silent from 25.
    caller = "." * 20 + "#" * 15 + "." * 30
    app = "#" * 25 + "." * 40
    m = metered(caller, app, cleared_at=23)
    assert m["barge_ins"] == [{"at_ms": 400, "yield_ms": 100, "cleared": True}]
    assert m["talk_over_ms"] == 100
    never = metered("." * 5 + "#" * 5, "#" * 10)
    assert never["barge_ins"] == [{"at_ms": 100, "yield_ms": None, "cleared": False}]


def test_the_most_audio_the_app_had_buffered_ahead():
    m = metered("." * 4, "#" * 4, buffered=[0, 2000, 1980, 40])
    assert m["max_buffered_ms"] == 2000


def streamed(pattern: str, *, silent_ticks_fast: bool = False) -> dict:
    """The app's stream audio: '#' a tick it played, '.' a tick with none."""
    meter = ConversationMeter()
    for c in pattern:
        if c == "#":
            meter.feed(False, True, streamed=True)
        elif silent_ticks_fast:
            meter.feed_silent()
        else:
            meter.feed(False, False)
    return meter.as_json()


def test_gaps_in_the_apps_stream_audio_up_to_200_ms_are_underruns():
    limit = UNDERRUN_MS // 20
    # A 60 ms stall, then one of exactly 200 ms: two underruns; a pause longer than that is no underrun.
    pattern = "#" * 10 + "." * 3 + "#" * 5 + "." * limit + "#" * 5 + "." * (limit + 1) + "#" * 5
    for fast in (False, True):
        m = streamed(pattern, silent_ticks_fast=fast)
        assert (m["underruns"], m["underrun_ms"]) == (2, 60 + UNDERRUN_MS)


def test_an_app_that_keeps_ahead_has_no_underruns_and_silence_before_its_first_audio_is_none():
    m = streamed("." * 5 + "#" * 50 + "." * 5)
    assert (m["underruns"], m["underrun_ms"]) == (0, 0)


def test_feed_silent_leaves_the_same_state_as_a_silent_feed():
    rng = random.Random(7)
    turns = barge_ins = 0
    for _ in range(50):
        fast, slow = ConversationMeter(), ConversationMeter()
        for _ in range(40):  # runs of 1 to 40 ticks: turns, pauses past the hangover, barge-ins, clears
            caller, app = rng.random() < 0.4, rng.random() < 0.4
            for _ in range(rng.randint(1, 40)):
                cleared = rng.random() < 0.05
                if not (caller or app or cleared):
                    fast.feed_silent()
                else:
                    fast.feed(caller, app, cleared=cleared)
                slow.feed(caller, app, cleared=cleared)
        assert fast.as_json() == slow.as_json()
        turns, barge_ins = turns + len(slow.turns), barge_ins + len(slow.barge_ins)
    assert turns > 100 and barge_ins > 20  # the runs made plenty of both
