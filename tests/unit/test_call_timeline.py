"""What happens on a call's timeline without audio analysis, tick by tick: timers (time limits, answering
machine verdicts), the caller's words for transcription, and the webhooks they give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.calls import events, machine_detection, reactions
from emulator.calls.actions import call as commands, transcription
from emulator.calls.actions.context import CommandContext
from emulator.calls.effects import Cue, Emit, PlayClip, StartRecording, StartTimer
from emulator.calls.ids import IdFactory
from emulator.calls.models import CallState, Transcription
from emulator.calls.store import CallStore
from emulator.media.engine import CallMedia
from emulator.media.library import build_stream_media
from emulator.scenarios.cursor import ScriptCursor
from emulator.scenarios.loader import Callee, parse_scenario
from emulator.scenarios.segments import compile_track
from emulator.scenarios.steps import Say, Silence

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def engine(text: str) -> CallMedia:
    scenario = parse_scenario(text, "t.yaml", Path("."))
    return CallMedia(build_stream_media(scenario, "PCMU"), at_end=scenario.at_end)


def test_a_timer_fires_with_the_tick_that_ends_its_time_and_bounds_the_quiet_ticks():
    media = engine("at_end: stay\ninbound:\n  - silence: {ms: 2000}\n")
    media.add_timer(100, "a")  # 5 ticks: with tick 4
    media.add_timer(100, "b")  # same tick: in the order set
    media.add_timer(40, "c")
    media.advance()  # tick 0 schedules nothing more
    assert media.quiet_ticks() == 0  # tick 1 is c's
    fired = [(tick.number, tick.cues) for tick in (media.advance() for _ in range(5)) if tick.cues]
    assert fired == [(1, ("c",)), (4, ("a", "b"))]
    media.add_timer(1000, "d")
    assert media.quiet_ticks() == 49 and not media.is_idle
    media.skip(49)
    assert media.advance().cues == ("d",)


def test_a_skipped_engine_fires_its_timers_at_the_same_ticks_as_one_advanced_tick_by_tick():
    def fired(skipping: bool) -> list[tuple[int, tuple[object, ...]]]:
        media = engine("at_end: stay\ninbound:\n  - silence: {ms: 3000}\n")
        media.add_timer(1000, "limit")
        found = []
        while media.index < 100:
            quiet = media.quiet_ticks()
            if skipping and quiet > 1:
                media.skip(quiet)
                continue
            tick = media.advance()
            if tick.cues:
                found.append((tick.number, tick.cues))
        return found

    assert fired(True) == fired(False) == [(49, ("limit",))]


def test_the_callers_words_are_heard_half_way_through_and_once_said():
    track = compile_track([Silence(100), Say("one two three four", samples=_speech(1000)), Silence(200)], 8000)
    cursor = ScriptCursor(track)
    said = [(tick.at_ms, tick.said) for tick in (cursor.advance() for _ in range(70)) if tick.said]
    assert said == [(600, (("one two", False),)), (1100, (("one two three four", True),))]


def test_quiet_ticks_stop_at_the_words_so_a_skipping_cursor_reports_them_at_the_same_tick():
    track = compile_track([Say("hello there", samples=_speech(1000)), Silence(2000)], 8000)
    plain, skipping = ScriptCursor(track), ScriptCursor(track)
    heard_plain = [(t.at_ms, t.said) for t in (plain.advance() for _ in range(150)) if t.said]
    heard_skipping = []
    while skipping.ticks < 150:
        quiet = skipping.quiet_ticks()
        if quiet > 1:
            skipping.skip(quiet)
            continue
        tick = skipping.advance()
        if tick.said:
            heard_skipping.append((tick.at_ms, tick.said))
    assert heard_skipping == heard_plain and len(heard_plain) == 2


def _speech(ms: int):  # type: ignore[no-untyped-def]
    import numpy as np

    return np.full(ms * 16, 0.1, dtype=np.float32)  # 16 kHz, the speech store's rate


@pytest.mark.parametrize(
    ("callee", "mode", "config", "expected"),
    [
        (Callee(), "detect", {}, [(1800, "call.machine.detection.ended", "human")]),
        (
            Callee(answered_by="human", greeting_ms=5000),
            "detect",
            {},
            [(3500, "call.machine.detection.ended", "human")],
        ),
        (
            Callee(answered_by="machine", greeting_ms=4000, beep=True),
            "detect_beep",
            {},
            [(3500, "call.machine.detection.ended", "machine"), (4500, "call.machine.greeting.ended", "beep_detected")],
        ),
        (
            Callee(answered_by="machine", greeting_ms=9000),
            "greeting_end",
            {"greeting_total_analysis_time_millis": 6000},
            [(3500, "call.machine.detection.ended", "machine"), (6000, "call.machine.greeting.ended", "not_sure")],
        ),
        (Callee(answered_by="fax"), "detect_words", {}, [(3500, "call.machine.detection.ended", "not_sure")]),
        (Callee(answered_by="fax"), "premium", {}, [(3500, "call.machine.premium.detection.ended", "fax_detected")]),
        (
            Callee(answered_by="machine", beep=True),
            "premium",
            {"total_analysis_time_millis": 2000},
            [
                (2000, "call.machine.premium.detection.ended", "machine"),
                (4500, "call.machine.premium.greeting.ended", "beep_detected"),
            ],
        ),
        (Callee(answered_by="machine"), "disabled", {}, []),
    ],
)
def test_machine_detection_says_what_a_detector_would_and_when(callee, mode, config, expected):
    cues = machine_detection.detection_cues(mode, config, callee)
    assert [(at, cue.what, cue.result) for at, cue in cues] == expected


def context(ids: IdFactory) -> CommandContext:
    return CommandContext(ids=ids, user_id="u", call_codec="PCMU", scenario="default", now=0.0, timestamp="T")


def test_dials_answer_options_start_at_the_answer():
    ids = IdFactory(seed=3)
    store = CallStore(ids)
    body = {
        "connection_id": "1",
        "to": "+13125550199,12",
        "from": "+13125550100",
        "record": "record-from-answer",
        "media_name": "hello.wav",
        "time_limit_secs": 60,
        "transcription": True,
        "transcription_config": {"transcription_tracks": "both", "transcription_engine": "A"},
        "answering_machine_detection": "detect",
    }
    call, outcome = commands.dial(context(ids), store, body, Callee())
    assert call.to == "+13125550199" and outcome.data["recording_id"] == call.answer_recording_id
    answered = commands.callee_answers(context(ids), call, Callee(answered_by="machine"))
    effects = answered.effects
    (recording,) = [e for e in effects if isinstance(e, StartRecording)]
    assert recording.request.recording_id == call.answer_recording_id
    assert (recording.request.format, recording.request.channels) == ("mp3", "dual")
    clips = [e.clip for e in effects if isinstance(e, PlayClip)]
    assert [(c.kind, c.media_name, c.digits) for c in clips] == [("playback", "hello.wav", ""), ("dtmf", None, "12")]
    timers = [(e.after_ms, e.cue) for e in effects if isinstance(e, StartTimer)]
    assert timers == [(60_000, Cue("time_limit")), (3500, Cue("call.machine.detection.ended", "machine"))]
    assert call.transcription == Transcription(tracks="both", engine="Google")
    limit = reactions.cue_due(context(ids), call, Cue("time_limit"))
    (hangup,) = [e for e in limit.effects if isinstance(e, Emit)]
    assert hangup.payload["hangup_cause"] == "time_limit" and call.state is CallState.ENDED
    assert reactions.cue_due(context(ids), call, Cue("call.machine.detection.ended", "human")).effects == ()


def test_transcription_reports_only_the_tracks_asked_for_and_partials_only_with_interim_results():
    ids = IdFactory(seed=4)
    call, _ = commands.incoming_call(context(ids), CallStore(ids), {"from": "+1", "to": "+2"})
    assert reactions.caller_said(call, "hi", True).effects == ()  # not transcribed
    call.transcription = transcription.settings({"transcription_tracks": "outbound"})
    assert reactions.caller_said(call, "hi", True).effects == ()
    spoken = reactions.clip_event(call, "ended", "speak", "completed", {"transcript": "Hello."})
    assert [e.event_type for e in spoken.effects] == ["call.speak.ended", "call.transcription"]
    cancelled = reactions.clip_event(call, "ended", "speak", "cancelled", {"transcript": "Hello."})
    assert [e.event_type for e in cancelled.effects] == ["call.speak.ended"]  # not all of it was heard
    call.transcription = transcription.settings({"transcription_engine_config": {"interim_results": True}})
    (partial,) = reactions.caller_said(call, "hi", False).effects
    assert isinstance(partial, Emit) and partial.payload["transcription_data"] == {
        "transcript": "hi",
        "confidence": events.TRANSCRIPT_CONFIDENCE,
        "is_final": False,
        "transcription_track": "inbound",
    }


def test_ssml_tags_are_not_said():
    assert transcription.spoken_words("<speak>Hi <break time='1s'/> there, <b>you</b>!</speak>", True) == (
        "Hi there, you!"
    )
    assert transcription.spoken_words("a  <b>", False) == "a <b>"


def test_answer_and_dial_take_the_body_of_transcription_start_as_their_transcription_config():
    start = json.loads((SCHEMAS / "transcription_start.schema.json").read_text())["properties"]
    for name in ("answer", "dial"):
        config = json.loads((SCHEMAS / f"{name}.schema.json").read_text())["properties"]["transcription_config"]
        assert config["properties"] == {k: v for k, v in start.items() if k not in ("client_state", "command_id")}


def test_an_answered_calls_hangup_carries_its_rtp_figures_and_an_incoming_initiated_its_sip_details():
    ids = IdFactory(seed=5)
    call, outcome = commands.incoming_call(context(ids), CallStore(ids), {"from": "alice", "to": "+13125550100"})
    (initiated,) = outcome.effects
    assert isinstance(initiated, Emit)
    assert initiated.payload["calling_party_type"] == "sip"  # not a number
    assert initiated.payload["to_sip_uri"] == "+13125550100@sip.telnyx.com"
    assert events.call_quality_stats(call) is None
    call.start_time, call.media_ticks = "T", 250
    stats = events.call_quality_stats(call)
    assert stats is not None and stats["inbound"]["packet_count"] == stats["outbound"]["packet_count"] == "250"


def test_a_refer_the_far_end_follows_ends_the_call_and_one_it_refuses_does_not():
    from emulator.calls.actions import sip
    from emulator.calls.effects import StartRefer
    from emulator.scenarios.loader import ReferAnswer

    ids = IdFactory(seed=6)
    call, _ = commands.incoming_call(context(ids), CallStore(ids), {"from": "+1", "to": "+2"})
    commands.answer(context(ids), CallStore(ids), call, {})
    started, start = sip.refer(context(ids), CallStore(ids), call, {"sip_address": "sip:a@b"}).effects
    assert isinstance(started, Emit) and started.payload["sip_notify_response"] == 100
    assert isinstance(start, StartRefer)
    assert (ReferAnswer().status, ReferAnswer(accept=False).status, ReferAnswer(notify=486).status) == (200, 603, 486)
    failed = reactions.cue_due(context(ids), call, Cue("call.refer.failed", "603")).effects
    assert [e.event_type for e in failed if isinstance(e, Emit)] == ["call.refer.failed"] and call.is_alive
    completed = reactions.cue_due(context(ids), call, Cue("call.refer.completed", "200")).effects
    assert [e.event_type for e in completed if isinstance(e, Emit)] == ["call.refer.completed", "call.hangup"]
    assert not call.is_alive
