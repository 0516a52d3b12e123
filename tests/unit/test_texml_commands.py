"""Each TeXML verb as the Call Control command it runs as (emulator/texml/commands.py), and the parameters of
TeXML's requests: checked against the commands' own schemas, so a verb can never send a body its command refuses."""

from __future__ import annotations

import pytest

from emulator.api.schemas import SchemaRegistry, default_schema_dir
from emulator.calls.actions import ACTIONS
from emulator.texml import commands
from emulator.texml.document import parse_texml

SCHEMAS = SchemaRegistry.load(default_schema_dir())


def verbs(body: str) -> tuple:
    return parse_texml(f"<Response>{body}</Response>").verbs


def accepted(command: commands.Command) -> commands.Command:
    assert SCHEMAS.validate(ACTIONS[command.action].schema, command.body) == []
    return command


def test_say_speaks_with_telnyx_voice_names_and_loops():
    (say,) = verbs('<Say voice="woman" language="en-GB" loop="0">Hello</Say>')
    command = accepted(commands.say(say))
    assert command.action == "speak" and command.until == commands.SPEAK_ENDED
    assert command.body == {"payload": "Hello", "voice": "female", "language": "en-GB", "loop": "infinity"}
    (polly,) = verbs('<Say voice="Polly.Joanna">Hi</Say>')
    assert accepted(commands.say(polly)).body["voice"] == "Polly.Joanna"


def test_play_is_a_playback_or_keys_sent_as_tones():
    (play, keys) = verbs('<Play loop="2">https://example.com/a.mp3</Play><Play digits="12w#"/>')
    assert accepted(commands.play(play)).body == {"audio_url": "https://example.com/a.mp3", "loop": 2}
    tones = accepted(commands.play(keys))
    assert tones.action == "send_dtmf" and tones.body["digits"] == "12w#" and tones.until is None
    assert commands.digits_ms("12w#") == 3 * 350 + 500  # what the runner waits: each tone and gap, "w" 0.5 s


def test_a_gather_with_one_prompt_is_interrupted_by_keys_and_with_several_plays_them_first():
    (single,) = verbs('<Gather numDigits="4" timeout="3" finishOnKey="*"><Say>Your PIN?</Say></Gather>')
    (command,) = commands.gather(single)
    assert accepted(command).action == "gather_using_speak"
    assert command.body["minimum_digits"] == command.body["maximum_digits"] == 4
    # TeXML's timeout runs from the prompt's end; one try, as TeXML's Gather does not repeat its prompt.
    assert command.body["initial_timeout_millis"] == command.body["inter_digit_timeout_millis"] == 3000
    assert command.body["terminating_digit"] == "*" and command.body["maximum_tries"] == 1
    (several,) = verbs('<Gather><Say>One</Say><Pause length="1"/><Play>https://example.com/b.wav</Play></Gather>')
    steps = commands.gather(several)
    assert [getattr(step, "action", "pause") for step in steps] == ["speak", "pause", "playback_start", "gather"]
    accepted(steps[-1])


def test_record_stream_reject_and_dial_bodies_pass_their_commands_schemas():
    (record,) = verbs('<Record maxLength="30" timeout="5" playBeep="false" format="wav" trim="trim-silence"/>')
    body = accepted(commands.record(record)).body
    assert body == {
        "format": "wav",
        "channels": "dual",
        "play_beep": False,
        "max_length": 30,
        "timeout_secs": 5,
        "trim": "trim-silence",
    }
    (connect,) = verbs(
        '<Connect><Stream url="wss://bot.example.com/ws" bidirectionalMode="rtp" track="both_tracks">'
        '<Parameter name="lang" value="en"/></Stream></Connect>'
    )
    stream = accepted(commands.stream_start(connect.stream, wait=True))
    assert stream.body["stream_bidirectional_mode"] == "rtp" and stream.body["stream_track"] == "both_tracks"
    assert stream.body["custom_parameters"] == [{"name": "lang", "value": "en"}]
    assert stream.until == commands.STREAM_ENDED
    (reject,) = verbs('<Reject reason="busy"/>')
    assert accepted(commands.reject(reject)).body == {"cause": "USER_BUSY"}
    (dial,) = verbs('<Dial timeout="15" callerId="+13125550100"><Number sendDigits="12">+13125550199</Number></Dial>')
    transfer = accepted(commands.dial(dial, "+13125550122"))
    assert transfer.body["to"] == "+13125550199,12" and transfer.body["from"] == "+13125550100"
    assert transfer.body["park_after_unbridge"] == "self" and transfer.body["timeout_secs"] == 15


@pytest.mark.parametrize(
    ("answered", "cause", "status"),
    [(True, "normal_clearing", "completed"), (False, "user_busy", "busy"), (False, "timeout", "no-answer"),
     (False, "originator_cancel", "canceled"), (False, "unallocated_number", "failed")],
)  # fmt: skip
def test_the_last_status_says_why_a_call_was_never_answered(answered, cause, status):
    assert commands.final_status(answered, {"hangup_cause": cause}) == status


def test_request_parameters_name_the_call_and_the_recording():
    facts = commands.CallFacts("v3:abc", "acct", "+13125550111", "+13125550122", "inbound", "conn")
    params = commands.call_params(facts, "in-progress")
    assert params["CallSid"] == "v3:abc" and params["AccountSid"] == "acct" and params["Direction"] == "inbound"
    saved = {
        "recording_urls": {"mp3": "http://127.0.0.1:8000/_emulator/call-recordings/r1.mp3"},
        "channels": "dual",
        "recording_started_at": "2026-12-05T10:00:00.000000Z",
        "recording_ended_at": "2026-12-05T10:00:02.500000Z",
    }
    assert commands.recording_seconds(saved) == 2.5
    recording = commands.recording_params(saved, commands.recording_seconds(saved))
    assert recording["RecordingUrl"].endswith("r1.mp3") and recording["RecordingChannels"] == "2"
    assert recording["RecordingDuration"] == "2"
