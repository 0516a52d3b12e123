"""parse_texml: each verb with its attributes and Telnyx's defaults, the documents apps really send, and every
kind of TexmlError with the line (and column) it names."""

from __future__ import annotations

import pytest

from emulator.texml import (
    Connect,
    Dial,
    Document,
    Gather,
    Hangup,
    Number,
    Parameter,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    Start,
    Stop,
    Stream,
    TexmlError,
    TexmlErrorKind,
    parse_texml,
)
from emulator.texml.verbs import (
    BidirectionalCodec,
    BidirectionalMode,
    CallEvent,
    DialRecord,
    GatherInput,
    HttpMethod,
    MachineDetection,
    RecordChannels,
    RecordFormat,
    RecordingEvent,
    RejectReason,
    StreamCodec,
    StreamTrack,
    Trim,
)

PIPECAT = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://example.com/ws" '
    'bidirectionalMode="rtp"/></Connect><Pause length="40"/></Response>'
)


def verbs(body: str) -> tuple[object, ...]:
    document = parse_texml(f"<Response>{body}</Response>")
    assert document.warnings == ()
    return document.verbs


def only(body: str) -> object:
    (verb,) = verbs(body)
    return verb


def refused(source: str) -> TexmlError:
    with pytest.raises(TexmlError) as caught:
        parse_texml(source)
    return caught.value


# -- the documents apps send -------------------------------------------------------------------------------------


def test_pipecats_document_streams_both_ways_over_rtp_then_pauses_forty_seconds():
    document = parse_texml(PIPECAT)
    assert document == Document(
        verbs=(
            Connect(stream=Stream(url="wss://example.com/ws", bidirectional_mode=BidirectionalMode.RTP)),
            Pause(length=40),
        )
    )
    stream = document.verbs[0].stream  # type: ignore[union-attr]
    assert (stream.track, stream.codec, stream.bidirectional_codec) == (
        StreamTrack.INBOUND,
        StreamCodec.DEFAULT,
        BidirectionalCodec.PCMU,
    )
    assert (stream.bidirectional_sampling_rate, stream.enable_reconnect) == (8000, True)


def test_pipecats_document_reads_the_same_from_bytes_and_from_str():
    assert parse_texml(PIPECAT.encode()) == parse_texml(PIPECAT)


def test_an_ivr_gathers_one_digit_behind_a_prompt_then_redirects_when_nothing_is_pressed():
    document = parse_texml(
        """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Gather action="https://app.example.com/menu" numDigits="1" timeout="10">
    <Say voice="alice" language="en-GB">Press 1 for sales, 2 for support.</Say>
  </Gather>
  <Redirect method="GET">https://app.example.com/start</Redirect>
</Response>"""
    )
    assert document == Document(
        verbs=(
            Gather(
                action="https://app.example.com/menu",
                num_digits=1,
                timeout=10,
                children=(Say(text="Press 1 for sales, 2 for support.", voice="alice", language="en-GB"),),
            ),
            Redirect(url="https://app.example.com/start", method=HttpMethod.GET),
        )
    )
    assert [verb.line for verb in document.verbs] == [3, 6]
    assert document.verbs[0].children[0].line == 4  # type: ignore[union-attr]


def test_an_empty_response_has_no_verbs():
    assert parse_texml("<Response/>") == Document(verbs=())


# -- each verb: attributes and defaults ---------------------------------------------------------------------------


def test_say_defaults_to_the_man_voice_once_and_folds_whitespace():
    assert only("<Say>\n  Hello   there\n</Say>") == Say(text="Hello there", voice="man", language=None, loop=1)
    assert only('<Say voice="Polly.Amy-Neural" loop="0">Hi</Say>') == Say(text="Hi", voice="Polly.Amy-Neural", loop=0)


def test_documented_say_options_the_emulator_does_not_model_are_accepted_silently():
    assert only('<Say voiceSpeed="1.2" api_key_ref="k" region="eastus">Hi</Say>') == Say(text="Hi")


def test_play_reads_a_url_digits_or_a_ring_tone():
    assert only("<Play>https://example.com/a.mp3</Play>") == Play(url="https://example.com/a.mp3", loop=1)
    assert only('<Play digits="12w#"/>') == Play(digits="12w#")
    assert only('<Play ringTone="uk" loop="3"/>') == Play(ring_tone="uk", loop=3)
    assert only(
        '<Play loop="2" mediaStorage="true" failoverUrl="https://b.example.com/a.mp3" continueOnError="TRUE">a</Play>'
    ) == Play(url="a", loop=2, media_storage=True, failover_url="https://b.example.com/a.mp3", continue_on_error=True)


def test_pause_lasts_one_second_unless_told():
    assert verbs('<Pause/><Pause length="7"/>') == (Pause(length=1), Pause(length=7))


def test_gather_defaults_are_telnyxs():
    gather = only("<Gather/>")
    assert gather == Gather(
        action=None,
        method=None,
        timeout=5,
        input=(GatherInput.DTMF,),
        finish_on_key="#",
        num_digits=None,
        min_digits=1,
        max_digits=128,
        valid_digits=None,
        language="en-US",
        children=(),
    )


def test_gather_reads_every_modelled_attribute_and_nests_say_play_and_pause():
    gather = only(
        '<Gather action="/next" method="get" timeout="3" input="dtmf speech" finishOnKey="*" numDigits="4" '
        'minDigits="2" maxDigits="6" validDigits="0123" invalidDigitsAction="/bad" language="fr-FR" '
        'speechTimeout="auto" partialResultCallback="/partial" partialResultCallbackMethod="GET" hints="a,b">'
        '<Say>Your PIN</Say><Pause length="2"/><Play>https://example.com/beep.wav</Play></Gather>'
    )
    assert gather == Gather(
        action="/next",
        method=HttpMethod.GET,
        timeout=3,
        input=(GatherInput.DTMF, GatherInput.SPEECH),
        finish_on_key="*",
        num_digits=4,
        min_digits=2,
        max_digits=6,
        valid_digits="0123",
        invalid_digits_action="/bad",
        language="fr-FR",
        speech_timeout="auto",
        partial_result_callback="/partial",
        partial_result_callback_method=HttpMethod.GET,
        children=(Say(text="Your PIN"), Pause(length=2), Play(url="https://example.com/beep.wav")),
    )


def test_an_empty_finish_on_key_turns_the_key_off():
    assert only('<Gather finishOnKey=""/>') == Gather(finish_on_key="")


def test_record_defaults_and_attributes():
    assert only("<Record/>") == Record(
        action=None,
        method=HttpMethod.POST,
        finish_on_key="1234567890*#",
        timeout=0,
        max_length=3600,
        play_beep=True,
        trim=None,
        channels=RecordChannels.DUAL,
        format=RecordFormat.MP3,
        recording_status_callback_event=(RecordingEvent.COMPLETED,),
        transcription=False,
    )
    assert only(
        '<Record action="/done" method="GET" finishOnKey="#" timeout="5" maxLength="30" playBeep="false" '
        'trim="trim-silence" channels="mono" format="wav" recordingStatusCallback="/rec" '
        'recordingStatusCallbackMethod="GET" recordingStatusCallbackEvent="in-progress completed" '
        'transcription="true" transcriptionCallback="/text"/>'
    ) == Record(
        action="/done",
        method=HttpMethod.GET,
        finish_on_key="#",
        timeout=5,
        max_length=30,
        play_beep=False,
        trim=Trim.TRIM_SILENCE,
        channels=RecordChannels.SINGLE,
        format=RecordFormat.WAV,
        recording_status_callback="/rec",
        recording_status_callback_method=HttpMethod.GET,
        recording_status_callback_event=(RecordingEvent.IN_PROGRESS, RecordingEvent.COMPLETED),
        transcription=True,
        transcription_callback="/text",
    )


def test_hangup_and_reject():
    assert verbs("<Hangup/>") == (Hangup(),)
    assert only("<Reject/>") == Reject(reason=RejectReason.REJECTED)
    assert only('<Reject reason="busy"/>') == Reject(reason=RejectReason.BUSY)


def test_redirect_posts_unless_told():
    assert only("<Redirect> /next.xml </Redirect>") == Redirect(url="/next.xml", method=HttpMethod.POST)


def test_dial_with_a_number_in_its_body_is_one_number_with_the_defaults():
    dial = only("<Dial>+15550001111</Dial>")
    assert dial == Dial(
        numbers=(Number(number="+15550001111"),),
        action=None,
        method=HttpMethod.POST,
        caller_id=None,
        hangup_on_star=False,
        timeout=30,
        time_limit=14400,
        record=DialRecord.DO_NOT_RECORD,
        answer_on_bridge=False,
        sequential=False,
        ring_tone="us",
    )
    assert dial.numbers[0].status_callback_event == (CallEvent.COMPLETED,)  # type: ignore[attr-defined]


def test_dial_with_number_nouns_and_their_attributes():
    dial = only(
        '<Dial action="/after" method="GET" callerId="+15550002222" fromDisplayName="Shop" hangupOnStar="true" '
        'timeout="20" timeLimit="600" record="record-from-answer-dual" answerOnBridge="true" sequential="true">'
        '<Number statusCallback="/status" statusCallbackEvent="initiated ringing answered completed" '
        'statusCallbackMethod="GET" url="/whisper" method="GET" sendDigits="ww123" machineDetection="Enable">'
        "+15550003333</Number><Number>+15550004444</Number></Dial>"
    )
    assert dial == Dial(
        numbers=(
            Number(
                number="+15550003333",
                status_callback="/status",
                status_callback_event=(CallEvent.INITIATED, CallEvent.RINGING, CallEvent.ANSWERED, CallEvent.COMPLETED),
                status_callback_method=HttpMethod.GET,
                url="/whisper",
                method=HttpMethod.GET,
                send_digits="ww123",
                machine_detection=MachineDetection.ENABLE,
            ),
            Number(number="+15550004444"),
        ),
        action="/after",
        method=HttpMethod.GET,
        caller_id="+15550002222",
        from_display_name="Shop",
        hangup_on_star=True,
        timeout=20,
        time_limit=600,
        record=DialRecord.RECORD_FROM_ANSWER_DUAL,
        answer_on_bridge=True,
        sequential=True,
    )


def test_start_stream_with_every_attribute_and_its_parameters():
    start = only(
        '<Start><Stream url="wss://example.com/s" name="agent" track="both_tracks" codec="PCMA" '
        'bidirectionalMode="rtp" bidirectionalCodec="G722" bidirectionalSamplingRate="16000" '
        'statusCallback="https://example.com/events" statusCallbackMethod="GET" enableReconnect="false">'
        '<Parameter name="customer_id" value="12345"/><Parameter name="empty"/></Stream></Start>'
    )
    assert start == Start(
        stream=Stream(
            url="wss://example.com/s",
            name="agent",
            track=StreamTrack.BOTH,
            codec=StreamCodec.PCMA,
            bidirectional_mode=BidirectionalMode.RTP,
            bidirectional_codec=BidirectionalCodec.G722,
            bidirectional_sampling_rate=16000,
            status_callback="https://example.com/events",
            status_callback_method=HttpMethod.GET,
            enable_reconnect=False,
            parameters=(Parameter(name="customer_id", value="12345"), Parameter(name="empty", value="")),
        )
    )


def test_stop_stream_needs_no_url():
    assert only("<Stop><Stream/></Stop>") == Stop(stream=Stream())
    assert only('<Stop><Stream name="agent"/></Stop>') == Stop(stream=Stream(name="agent"))


def test_positions_are_kept_but_take_no_part_in_equality():
    (say,) = parse_texml("<Response>\n\n   <Say>Hi</Say></Response>").verbs
    assert say == Say(text="Hi") and say.line == 3


def test_bytes_are_decoded_as_their_declaration_says():
    source = '<?xml version="1.0" encoding="ISO-8859-1"?><Response><Say>Café</Say></Response>'.encode("latin-1")
    assert parse_texml(source).verbs == (Say(text="Café"),)


# -- lenient, with a warning ----------------------------------------------------------------------------------------


def warnings_of(body: str) -> tuple[str, ...]:
    return parse_texml(f"<Response>{body}</Response>").warnings


def test_an_unknown_attribute_is_ignored_with_a_warning_naming_line_element_and_attribute():
    document = parse_texml('<Response>\n  <Pause length="2" lenght="3"/>\n</Response>')
    assert document.verbs == (Pause(length=2),)
    assert document.warnings == (
        "line 2, column 3: <Pause> attribute 'lenght' is not a TeXML attribute of <Pause>; ignored",
    )


def test_an_attribute_in_the_wrong_case_gets_a_hint():
    (warning,) = warnings_of('<Gather numdigits="1"/>')
    assert "'numdigits'" in warning and "did you mean 'numDigits'?" in warning


def test_a_well_formed_number_outside_the_documented_range_is_kept_with_a_warning():
    document = parse_texml('<Response><Start><Stream url="wss://x"/></Start><Pause length="86400"/></Response>')
    assert document.verbs[1] == Pause(length=86400)
    assert document.warnings == (
        "line 1, column 49: <Pause> attribute 'length': 86400 is outside Telnyx's documented range (1-180); "
        "kept as given",
    )
    (warning,) = warnings_of('<Start><Stream url="wss://x" bidirectionalSamplingRate="48000"/></Start>')
    assert "48000 is not one of Telnyx's documented values (8000, 16000, 24000)" in warning


def test_methods_are_read_in_any_case_and_namespace_declarations_are_ignored():
    document = parse_texml('<Response xmlns="urn:x"><Redirect method="get">/a</Redirect></Response>')
    assert document.verbs == (Redirect(url="/a", method=HttpMethod.GET),)
    assert document.warnings == ()


def test_markup_inside_say_is_spoken_as_text_with_a_warning():
    document = parse_texml('<Response><Say>Hello <break time="1s"/> <emphasis>world</emphasis></Say></Response>')
    assert document.verbs == (Say(text="Hello world"),)
    assert document.warnings == ("line 1, column 11: <Say>: markup inside it (<break>) is read as plain text",)


def test_stray_text_an_empty_say_and_digits_over_a_url_each_warn():
    assert warnings_of("<Gather>Press 1</Gather>") == ("line 1, column 11: <Gather>: text inside it is ignored",)
    assert warnings_of("<Say> </Say>") == ("line 1, column 11: <Say>: it has no text, so it says nothing",)
    assert warnings_of('<Play digits="1">https://a/b.mp3</Play>') == (
        "line 1, column 11: <Play>: digits play instead of https://a/b.mp3",
    )


def test_verbs_after_hangup_reject_or_redirect_never_run():
    document = parse_texml("<Response>\n<Say>a</Say>\n<Hangup/>\n<Say>b</Say>\n<Pause/>\n</Response>")
    assert len(document.verbs) == 4
    assert document.warnings == ("line 4, column 1: <Say> never runs: <Hangup> on line 3 ends the document",)
    assert "<Redirect> on line 1" in warnings_of("<Redirect>/x</Redirect><Hangup/>")[0]


# -- refused: one TexmlError naming the line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kind", "message"),
    [
        (
            "<Response>\n  <Say>Hi</Say>\n  <Pause>\n</Response>",
            TexmlErrorKind.MALFORMED,
            "line 4, column 3: malformed XML: mismatched tag",
        ),
        ("", TexmlErrorKind.MALFORMED, "line 1, column 1: malformed XML: no element found"),
        (
            "<Response><Say>a</Say></Response>\n<Response/>",
            TexmlErrorKind.MALFORMED,
            "line 2, column 1: malformed XML: junk after document element",
        ),
        (
            '<!DOCTYPE r [<!ENTITY e "x">]>\n<Response/>',
            TexmlErrorKind.MALFORMED,
            "line 1, column 13: a DOCTYPE declaration is not allowed in TeXML",
        ),
        (
            "<Response>\n  <Speak>Hi</Speak>\n</Response>",
            TexmlErrorKind.UNKNOWN_VERB,
            "line 2, column 3: <Speak>: not a TeXML verb or noun (allowed in <Response>: <Connect>, <Dial>, "
            "<Gather>, <Hangup>, <Pause>, <Play>, <Record>, <Redirect>, <Reject>, <Say>, <Start>, <Stop>)",
        ),
        (
            "<Response>\n<say>Hi</say>\n</Response>",
            TexmlErrorKind.UNKNOWN_VERB,
            "line 2, column 1: <say>: unknown; did you mean <Say>? TeXML names are case-sensitive",
        ),
        (
            "<response/>",
            TexmlErrorKind.UNKNOWN_VERB,
            "line 1, column 1: <response>: unknown; did you mean <Response>? TeXML names are case-sensitive",
        ),
        (
            "<Document/>",
            TexmlErrorKind.UNKNOWN_VERB,
            "line 1, column 1: <Document>: not a TeXML verb or noun (allowed as the root: <Response>)",
        ),
        (
            "<Response>\n\n<Enqueue>support</Enqueue></Response>",
            TexmlErrorKind.UNSUPPORTED_VERB,
            "line 3, column 1: <Enqueue>: a TeXML element the emulator does not run",
        ),
        (
            "<Response><Dial>\n  <Sip>sip:a@b</Sip></Dial></Response>",
            TexmlErrorKind.UNSUPPORTED_VERB,
            "line 2, column 3: <Sip>: a TeXML element the emulator does not run",
        ),
        (
            "<Response>\n<Number>+1555</Number></Response>",
            TexmlErrorKind.MISPLACED,
            "line 2, column 1: <Number>: not allowed in <Response>; it belongs in <Dial>",
        ),
        (
            "<Response><Gather>\n <Record/></Gather></Response>",
            TexmlErrorKind.MISPLACED,
            "line 2, column 2: <Record>: not allowed in <Gather>; it belongs in <Response>",
        ),
        (
            "<Response><Dial>\n<Say>Hi</Say></Dial></Response>",
            TexmlErrorKind.MISPLACED,
            "line 2, column 1: <Say>: not allowed in <Dial>; it belongs in <Response> or <Gather>",
        ),
        (
            "<Response>\n<Pause><Say>x</Say></Pause></Response>",
            TexmlErrorKind.MISPLACED,
            "line 2, column 8: <Say>: not allowed in <Pause>; it belongs in <Response> or <Gather>",
        ),
        (
            "<Response><Gather><Response/></Gather></Response>",
            TexmlErrorKind.MISPLACED,
            "line 1, column 19: <Response>: not allowed in <Gather>; <Response> is only ever the root",
        ),
        (
            "<Say>Hi</Say>",
            TexmlErrorKind.MISPLACED,
            "line 1, column 1: <Say>: not allowed as the root; it belongs in <Response> or <Gather>",
        ),
        (
            '<Response>\n<Connect>\n<Stream url="wss://a"/>\n<Stream url="wss://b"/></Connect></Response>',
            TexmlErrorKind.MISPLACED,
            "line 4, column 1: <Stream>: a second noun in <Connect>, which takes exactly one",
        ),
        (
            "<Response>\n<Dial>+1555<Number>+1666</Number></Dial></Response>",
            TexmlErrorKind.MISPLACED,
            "line 2, column 1: <Dial>: has both a number in its body (+1555) and <Number> nouns; use one or the other",
        ),
        (
            '<Response>\n  <Gather timeout="soon"/></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 3: <Gather> attribute 'timeout': expected a whole number, got 'soon'",
        ),
        (
            '<Response>\n<Pause length="1.5"/></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Pause> attribute 'length': expected a whole number, got '1.5'",
        ),
        (
            '<Response>\n<Say loop="-1">a</Say></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Say> attribute 'loop': expected a number of at least 0, got -1",
        ),
        (
            '<Response>\n<Record playBeep="yes"/></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Record> attribute 'playBeep': expected true or false, got 'yes'",
        ),
        (
            '<Response>\n<Reject reason="Busy"/></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Reject> attribute 'reason': expected one of rejected, busy, got 'Busy'",
        ),
        (
            '<Response>\n<Redirect method="PUT">/a</Redirect></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Redirect> attribute 'method': expected GET or POST, got 'PUT'",
        ),
        (
            '<Response>\n<Gather finishOnKey="x"/></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Gather> attribute 'finishOnKey': expected keys from '0123456789*#', got 'x' "
            "(not allowed: x)",
        ),
        (
            '<Response>\n<Gather input="voice"/></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Gather> attribute 'input': expected one of dtmf, speech, got 'voice'",
        ),
        (
            '<Response>\n<Gather minDigits="5" maxDigits="3"/></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Gather> attribute 'minDigits': 5 is more than maxDigits (3)",
        ),
        (
            '<Response><Connect>\n<Stream url="https://example.com/ws"/></Connect></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Stream> attribute 'url': expected a ws:// or wss:// URL, got 'https://example.com/ws'",
        ),
        (
            '<Response><Start>\n<Stream url="wss://a" track="both"/></Start></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Stream> attribute 'track': expected one of inbound_track, outbound_track, "
            "both_tracks, got 'both'",
        ),
        (
            '<Response>\n<Play ringTone="us">https://a/b.mp3</Play></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Play> attribute 'ringTone': cannot be combined with an audio URL in the body",
        ),
        (
            '<Response>\n<Gather action=" "/></Response>',
            TexmlErrorKind.BAD_ATTRIBUTE,
            "line 2, column 1: <Gather> attribute 'action': expected a URL, got an empty value",
        ),
        (
            "<Response>\n<Connect>\n  <Stream/>\n</Connect></Response>",
            TexmlErrorKind.MISSING_VALUE,
            "line 3, column 3: <Stream> attribute 'url': is required",
        ),
        (
            "<Response>\n<Connect/></Response>",
            TexmlErrorKind.MISSING_VALUE,
            "line 2, column 1: <Connect>: needs a <Stream> inside it",
        ),
        (
            "<Response>\n<Redirect/></Response>",
            TexmlErrorKind.MISSING_VALUE,
            "line 2, column 1: <Redirect>: needs the URL to fetch in its body",
        ),
        (
            "<Response>\n<Play/></Response>",
            TexmlErrorKind.MISSING_VALUE,
            "line 2, column 1: <Play>: needs an audio URL in its body, digits or ringTone",
        ),
        (
            "<Response>\n<Dial> </Dial></Response>",
            TexmlErrorKind.MISSING_VALUE,
            "line 2, column 1: <Dial>: needs a number to call, in its body or in <Number>",
        ),
        (
            "<Response><Dial>\n<Number/></Dial></Response>",
            TexmlErrorKind.MISSING_VALUE,
            "line 2, column 1: <Number>: needs the number to call in its body",
        ),
        (
            '<Response><Start><Stream url="wss://a">\n<Parameter value="1"/></Stream></Start></Response>',
            TexmlErrorKind.MISSING_VALUE,
            "line 2, column 1: <Parameter> attribute 'name': is required",
        ),
    ],
)
def test_a_document_that_cannot_run_raises_one_error_naming_its_line(source, kind, message):
    error = refused(source)
    assert (error.kind, str(error)) == (kind, message)


def test_the_error_carries_its_position_element_and_attribute_for_the_executor():
    error = refused('<Response>\n\n    <Dial timeout="often">+1555</Dial></Response>')
    assert (error.line, error.column, error.element, error.attribute) == (3, 5, "Dial", "timeout")
    assert error.detail == "expected a whole number, got 'often'"


def test_the_first_problem_in_document_order_is_the_one_reported():
    error = refused('<Response>\n<Pause length="x"/>\n<Bogus/>\n</Response>')
    assert error.line == 2 and error.kind is TexmlErrorKind.BAD_ATTRIBUTE
