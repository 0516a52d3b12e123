from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from emulator.api.schemas import Problem, SchemaError, SchemaRegistry, default_schema_dir

BODY_SCHEMAS = ("answer", "dial", "hangup", "streaming_start", "streaming_stop")
WSS = "wss://example.com/ws"
STATE = "aGF2ZSBhIG5pY2UgZGF5ID1d"  # the spec's client_state example
UUID = "1edb94f9-7ef0-4150-b502-e0ebadfd9491"
S = {"stream_url": WSS}  # the smallest valid streaming_start body
DIAL_MIN = {"connection_id": "2811212257810187875", "to": "+18005550100", "from": "+18005550101"}
START, STOP, HANGUP, ANSWER, DIAL = "streaming_start", "streaming_stop", "hangup", "answer", "dial"


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load(default_schema_dir())


def bad(name: str, body: object, *expected: str, id: str | None = None) -> Any:
    """A row of BAD: each expected problem is written "<code> <pointer>", with "-" for no pointer."""
    return pytest.param(name, body, list(expected), id=id)


def codes(problems: list[Problem]) -> list[str]:
    return [f"{p.code} {p.pointer or '-'}" for p in problems]


def test_default_schema_dir_is_the_repository_schemas_directory() -> None:
    assert default_schema_dir() == Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("path", sorted(default_schema_dir().glob("*.schema.json")), ids=lambda p: p.name)
def test_every_schema_file_is_a_valid_draft_2020_12_schema(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_registry_names_every_request_body(registry: SchemaRegistry) -> None:
    assert registry.names() >= set(BODY_SCHEMAS)


def test_fields_shared_by_several_bodies_are_defined_identically() -> None:
    definitions: dict[str, dict[str, Any]] = {}
    for name in BODY_SCHEMAS:
        schema = json.loads((default_schema_dir() / f"{name}.schema.json").read_text(encoding="utf-8"))
        for field, definition in schema["properties"].items():
            definition = {k: v for k, v in definition.items() if k != "description"}
            assert definitions.setdefault(field, definition) == definition, f"{name}: {field} differs"


BAD: list[Any] = [
    # --- streaming_start: one row per field and constraint ----------------------------------------------------
    bad(START, {}, "10004 /stream_url", id="stream_url-missing"),
    bad(START, {"enable_dialogflow": False}, "10004 /stream_url", id="dialogflow-off"),
    bad(START, {"stream_url": "http://example.com/ws"}, "10003 /stream_url", id="http"),
    bad(START, {"stream_url": "https://example.com"}, "10003 /stream_url", id="https"),
    bad(START, {"stream_url": "wss://"}, "10003 /stream_url", id="no-host"),
    bad(START, {"stream_url": "example.com/ws"}, "10003 /stream_url", id="no-scheme"),
    bad(START, {"stream_url": "wss://a b/"}, "10003 /stream_url", id="url-space"),
    bad(START, {"stream_url": WSS + "\n"}, "10003 /stream_url", id="url-newline"),
    bad(START, {"stream_url": ""}, "10003 /stream_url", id="url-blank"),
    bad(START, {"stream_url": 5}, "10003 /stream_url", id="url-type"),
    bad(START, {"stream_url": WSS + "/" + "a" * 1980}, "10003 /stream_url", id="url-long"),
    bad(START, {"stream_url": "http://" + "a" * 2000}, "10003 /stream_url", id="url-http-and-long"),
    bad(START, {**S, "stream_track": "inbound"}, "10032 /stream_track"),
    bad(START, {**S, "stream_track": "BOTH_TRACKS"}, "10032 /stream_track"),
    bad(START, {**S, "stream_track": 1}, "10015 /stream_track"),
    bad(START, {**S, "stream_codec": "pcmu"}, "10032 /stream_codec"),
    bad(START, {**S, "stream_codec": "G711"}, "10032 /stream_codec"),
    bad(START, {**S, "stream_codec": None}, "10015 /stream_codec"),
    bad(START, {**S, "stream_bidirectional_mode": "RTP"}, "10032 /stream_bidirectional_mode"),
    bad(START, {**S, "stream_bidirectional_mode": True}, "10015 /stream_bidirectional_mode"),
    bad(START, {**S, "stream_bidirectional_codec": "default"}, "10032 /stream_bidirectional_codec"),
    bad(START, {**S, "stream_bidirectional_codec": "amr-wb"}, "10032 /stream_bidirectional_codec"),
    bad(START, {**S, "stream_bidirectional_sampling_rate": 44100}, "10032 /stream_bidirectional_sampling_rate"),
    bad(START, {**S, "stream_bidirectional_sampling_rate": "16000"}, "10015 /stream_bidirectional_sampling_rate"),
    bad(START, {**S, "stream_bidirectional_sampling_rate": 16000.5}, "10015 /stream_bidirectional_sampling_rate"),
    bad(START, {**S, "stream_bidirectional_sampling_rate": True}, "10015 /stream_bidirectional_sampling_rate"),
    bad(START, {**S, "stream_bidirectional_target_legs": "all"}, "10032 /stream_bidirectional_target_legs"),
    bad(START, {**S, "stream_auth_token": "t" * 4001}, "10033 /stream_auth_token"),
    bad(START, {**S, "stream_auth_token": 42}, "10015 /stream_auth_token"),
    bad(START, {**S, "custom_parameters": {"a": "b"}}, "10015 /custom_parameters"),
    bad(START, {**S, "custom_parameters": ["a=b"]}, "10015 /custom_parameters/0"),
    bad(
        START,
        {**S, "custom_parameters": [{"name": "a", "value": "b"}, {"name": 1, "value": "b"}]},
        "10015 /custom_parameters/1/name",
    ),
    bad(START, {**S, "custom_parameters": [{"name": "a", "value": 2}]}, "10015 /custom_parameters/0/value"),
    bad(START, {**S, "custom_parameters": [{"name": "a"}]}, "10004 /custom_parameters/0/value"),
    bad(START, {**S, "custom_parameters": [{"value": "b"}]}, "10004 /custom_parameters/0/name"),
    bad(START, {**S, "enable_dialogflow": "false"}, "10015 /enable_dialogflow"),
    bad(START, {"enable_dialogflow": 1}, "10015 /enable_dialogflow", id="dialogflow-int"),
    bad(START, {**S, "dialogflow_config": True}, "10015 /dialogflow_config"),
    bad(START, {**S, "dialogflow_config": {"analyze_sentiment": "yes"}}, "10015 /dialogflow_config/analyze_sentiment"),
    bad(
        START,
        {**S, "dialogflow_config": {"partial_automated_agent_reply": 0}},
        "10015 /dialogflow_config/partial_automated_agent_reply",
    ),
    bad(START, {**S, "client_state": "not base64!"}, "90017 /client_state"),
    bad(START, {**S, "client_state": "aGVsbG8"}, "90017 /client_state", id="unpadded"),
    bad(START, {**S, "client_state": "aGVsbG8_"}, "90017 /client_state", id="urlsafe"),
    bad(START, {**S, "client_state": "aGVs bG8="}, "90017 /client_state", id="state-space"),
    bad(START, {**S, "client_state": "aGVsbG8=\n"}, "90017 /client_state", id="state-newline"),
    bad(START, {**S, "client_state": "a==="}, "90017 /client_state", id="too-much-padding"),
    bad(START, {**S, "client_state": {"a": 1}}, "90017 /client_state", id="object"),
    bad(START, {**S, "command_id": 7}, "10015 /command_id"),
    bad(
        START,
        {"stream_track": "x", "client_state": "!", "stream_codec": "opus", "stream_auth_token": "t" * 4001},
        "90017 /client_state",
        "10033 /stream_auth_token",
        "10032 /stream_codec",
        "10032 /stream_track",
        "10004 /stream_url",
        id="several-sorted-by-pointer",
    ),
    # --- streaming_stop ---------------------------------------------------------------------------------------
    bad(STOP, {"stream_id": "not-a-uuid"}, "10015 /stream_id"),
    bad(STOP, {"stream_id": UUID.replace("-", "")}, "10015 /stream_id", id="no-hyphens"),
    bad(STOP, {"stream_id": 5}, "10015 /stream_id"),
    bad(STOP, {"client_state": "abc"}, "90017 /client_state"),
    bad(STOP, {"command_id": ["x"]}, "10015 /command_id"),
    # --- hangup -----------------------------------------------------------------------------------------------
    bad(HANGUP, {"client_state": "abc"}, "90017 /client_state"),
    bad(HANGUP, {"command_id": 1}, "10015 /command_id"),
    bad(HANGUP, {"custom_headers": {"X-A": "b"}}, "10015 /custom_headers"),
    bad(HANGUP, {"custom_headers": [{"name": "X-A"}]}, "10004 /custom_headers/0/value"),
    bad(HANGUP, {"custom_headers": [{}]}, "10004 /custom_headers/0/name", "10004 /custom_headers/0/value"),
    # --- answer -----------------------------------------------------------------------------------------------
    bad(ANSWER, {"stream_url": "ws:/example.com"}, "10003 /stream_url"),
    bad(ANSWER, {"stream_codec": "Opus"}, "10032 /stream_codec"),
    bad(ANSWER, {"stream_track": "both"}, "10032 /stream_track"),
    bad(ANSWER, {"stream_bidirectional_mode": "wav"}, "10032 /stream_bidirectional_mode"),
    bad(ANSWER, {"stream_bidirectional_target_legs": "other"}, "10032 /stream_bidirectional_target_legs"),
    bad(ANSWER, {"send_silence_when_idle": "true"}, "10015 /send_silence_when_idle"),
    bad(ANSWER, {"client_state": "%%%%"}, "90017 /client_state"),
    bad(ANSWER, {"webhook_url": "ftp://example.com/hook"}, "10003 /webhook_url"),
    bad(ANSWER, {"webhook_url_method": "post"}, "10032 /webhook_url_method"),
    bad(ANSWER, {"webhook_urls": {"call.hangup": "nope"}}, "10003 /webhook_urls/call.hangup"),
    bad(ANSWER, {"webhook_urls": {"a/b~c": 1}}, "10003 /webhook_urls/a~1b~0c", id="pointer-escaping"),
    bad(ANSWER, {"webhook_urls": {"call.hangup": []}}, "10003 /webhook_urls/call.hangup"),
    bad(ANSWER, {"webhook_urls": {"call.hangup": ["nope"]}}, "10003 /webhook_urls/call.hangup/0"),
    bad(ANSWER, {"record_max_length": 43201}, "10033 /record_max_length"),
    bad(ANSWER, {"record_timeout_secs": -1}, "10033 /record_timeout_secs"),
    bad(ANSWER, {"sip_headers": [{"name": "X-Custom", "value": "1"}]}, "10032 /sip_headers/0/name"),
    bad(ANSWER, {"billing_group_id": "group-1"}, "10015 /billing_group_id"),
    # --- dial -------------------------------------------------------------------------------------------------
    bad(DIAL, {}, "10004 /connection_id", "10004 /from", "10004 /to", id="dial-empty"),
    bad(DIAL, {**DIAL_MIN, "to": ""}, "10004 /to", id="to-blank"),
    bad(DIAL, {**DIAL_MIN, "to": []}, "10004 /to", id="to-empty-list"),
    bad(DIAL, {**DIAL_MIN, "connection_id": ""}, "10004 /connection_id", id="connection-blank"),
    bad(DIAL, {**DIAL_MIN, "connection_id": 2811212257810187875}, "10015 /connection_id"),
    bad(DIAL, {**DIAL_MIN, "to": "18005550100"}, "10016 /to", id="to-no-plus"),
    bad(DIAL, {**DIAL_MIN, "to": "+08005550100"}, "10016 /to", id="to-leading-zero"),
    bad(DIAL, {**DIAL_MIN, "to": "+1234567890123456"}, "10016 /to", id="to-16-digits"),
    bad(DIAL, {**DIAL_MIN, "to": "+1 800 555 0100"}, "10016 /to", id="to-spaces"),
    bad(DIAL, {**DIAL_MIN, "to": "+١٨٠٠٥٥٥٠١٠٠"}, "10016 /to", id="to-arabic-digits"),
    bad(DIAL, {**DIAL_MIN, "to": "+18005550100\n"}, "10016 /to", id="to-newline"),
    bad(DIAL, {**DIAL_MIN, "to": "+18005550100,12x"}, "10016 /to", id="to-bad-dtmf"),
    bad(DIAL, {**DIAL_MIN, "to": 18005550100}, "10016 /to", id="to-int"),
    bad(DIAL, {**DIAL_MIN, "to": ["+18005550100", "bogus"]}, "10016 /to/1", id="to-list-item"),
    bad(DIAL, {**DIAL_MIN, "to": ["+18005550100,200"]}, "10016 /to/0", id="to-list-no-dtmf"),
    bad(DIAL, {**DIAL_MIN, "from": "sip:bot@example.com"}, "10016 /from"),
    bad(DIAL, {**DIAL_MIN, "from": ""}, "10004 /from", id="from-blank"),
    bad(DIAL, {**DIAL_MIN, "timeout_secs": 4}, "10033 /timeout_secs"),
    bad(DIAL, {**DIAL_MIN, "timeout_secs": 601}, "10033 /timeout_secs"),
    bad(DIAL, {**DIAL_MIN, "timeout_secs": "30"}, "10015 /timeout_secs"),
    bad(DIAL, {**DIAL_MIN, "time_limit_secs": 29}, "10033 /time_limit_secs"),
    bad(DIAL, {**DIAL_MIN, "time_limit_secs": 14401}, "10033 /time_limit_secs"),
    bad(DIAL, {**DIAL_MIN, "from_display_name": "A" * 129}, "10033 /from_display_name"),
    bad(DIAL, {**DIAL_MIN, "from_display_name": "<Acme>"}, "10015 /from_display_name"),
    bad(DIAL, {**DIAL_MIN, "answering_machine_detection": "DETECT"}, "10032 /answering_machine_detection"),
    bad(
        DIAL,
        {**DIAL_MIN, "answering_machine_detection_config": {"silence_threshold": "256"}},
        "10015 /answering_machine_detection_config/silence_threshold",
    ),
    bad(DIAL, {**DIAL_MIN, "webhook_url": "example.com/hook"}, "10003 /webhook_url"),
    bad(DIAL, {**DIAL_MIN, "webhook_url_method": "PUT"}, "10032 /webhook_url_method"),
    bad(
        DIAL,
        {**DIAL_MIN, "webhook_retries_policies": {"call.hangup": {"retries_ms": [1] * 6}}},
        "10033 /webhook_retries_policies/call.hangup/retries_ms",
    ),
    bad(DIAL, {**DIAL_MIN, "audio_url": "file:///a.wav"}, "10003 /audio_url"),
    bad(
        DIAL, {**DIAL_MIN, "audio_url": "https://example.com/a.wav", "media_name": "a"}, "10015 -", id="audio-and-media"
    ),
    bad(DIAL, {**DIAL_MIN, "bridge_on_answer": True}, "10004 /link_to"),
    bad(DIAL, {**DIAL_MIN, "park_after_unbridge": "self"}, "10004 /link_to"),
    bad(DIAL, {**DIAL_MIN, "custom_headers": [{"name": "X-A", "value": 1}]}, "10015 /custom_headers/0/value"),
    bad(DIAL, {**DIAL_MIN, "send_digits_on_answer": "12x"}, "10015 /send_digits_on_answer"),
    bad(DIAL, {**DIAL_MIN, "send_digits_on_answer": "1" * 65}, "10033 /send_digits_on_answer"),
    bad(DIAL, {**DIAL_MIN, "sip_transport_protocol": "udp"}, "10032 /sip_transport_protocol"),
    bad(DIAL, {**DIAL_MIN, "media_encryption": "srtp"}, "10032 /media_encryption"),
    bad(DIAL, {**DIAL_MIN, "record_custom_file_name": ""}, "10033 /record_custom_file_name"),
    bad(DIAL, {**DIAL_MIN, "stream_url": "http://example.com"}, "10003 /stream_url"),
    bad(DIAL, {**DIAL_MIN, "stream_bidirectional_sampling_rate": 11025}, "10032 /stream_bidirectional_sampling_rate"),
    bad(DIAL, {**DIAL_MIN, "stream_auth_token": "t" * 4001}, "10033 /stream_auth_token"),
    bad(
        DIAL,
        {**DIAL_MIN, "stream_establish_before_call_originate": "yes"},
        "10015 /stream_establish_before_call_originate",
    ),
    bad(DIAL, {**DIAL_MIN, "client_state": "abc"}, "90017 /client_state"),
    # --- not an object ----------------------------------------------------------------------------------------
    bad(HANGUP, [], "10015 -", id="list-body"),
    bad(START, "wss://example.com", "10015 -", id="string-body"),
    bad(DIAL, None, "10015 -", id="null-body"),
]


@pytest.mark.parametrize(("name", "body", "expected"), BAD)
def test_bad_body_yields_problems(registry: SchemaRegistry, name: str, body: object, expected: list[str]) -> None:
    assert codes(registry.validate(name, body)) == expected


SPEC_EXAMPLE = {
    "client_state": STATE,
    "command_id": "891510ac-f3e4-11e8-af5b-de00688a4901",
    "dialogflow_config": {"analyze_sentiment": False, "partial_automated_agent_reply": False},
    "enable_dialogflow": False,
    "stream_track": "both_tracks",
    "stream_url": "wss://www.example.com/websocket",
}
FULL_START = {
    **SPEC_EXAMPLE,
    "stream_codec": "L16",
    "stream_bidirectional_mode": "rtp",
    "stream_bidirectional_codec": "AMR-WB",
    "stream_bidirectional_sampling_rate": 48000,
    "stream_bidirectional_target_legs": "both",
    "stream_auth_token": "t" * 4000,
    "custom_parameters": [{"name": "param1", "value": "value1"}, {"name": "param2", "value": ""}],
}
FULL_DIAL = {
    **DIAL_MIN,
    "to": "sip:username@sip.telnyx.com;secure=srtp",
    "from_display_name": "Acme Support-1 ~!.+_",
    "timeout_secs": 600,
    "time_limit_secs": 30,
    "client_state": STATE,
    "command_id": "891510ac-f3e4-11e8-af5b-de00688a4901",
    "audio_url": "http://www.example.com/sounds/greeting.wav",
    "answering_machine_detection": "detect_beep",
    "answering_machine_detection_config": {"total_analysis_time_millis": 5000, "greeting_duration_millis": 1000},
    "custom_headers": [{"name": "head_1", "value": "val_1"}],
    "sip_headers": [{"name": "User-to-User", "value": "12345"}],
    "send_digits_on_answer": "wwww200",
    "sip_transport_protocol": "TLS",
    "media_encryption": "SRTP",
    "bridge_on_answer": True,
    "link_to": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
    "stream_url": "wss://www.example.com/websocket",
    "stream_track": "both_tracks",
    "stream_codec": "PCMA",
    "stream_bidirectional_mode": "rtp",
    "stream_bidirectional_codec": "G722",
    "stream_bidirectional_sampling_rate": 16000,
    "stream_bidirectional_target_legs": "self",
    "stream_auth_token": "secret",
    "stream_establish_before_call_originate": True,
    "send_silence_when_idle": True,
    "enable_dialogflow": False,
    "webhook_url": "https://www.example.com/server-b/",
    "webhook_url_method": "GET",
    "webhook_urls": {"call.hangup": "https://www.example.com/webhooks/hangup"},
    "webhook_retries_policies": {"call.hangup": {"retries_ms": [1000, 2000, 5000]}},
    "conference_config": {"conference_name": "not validated by the emulator"},
}

GOOD: list[Any] = [
    pytest.param(START, S, id="start-minimal"),
    pytest.param(START, {"stream_url": "ws://127.0.0.1:8765/calls/abc?token=x#f"}, id="start-ws-localhost"),
    pytest.param(START, {"stream_url": "WSS://EXAMPLE.COM"}, id="start-scheme-case"),
    pytest.param(START, {"stream_url": WSS + "/" + "a" * (2000 - len(WSS) - 1)}, id="start-url-2000"),
    pytest.param(START, SPEC_EXAMPLE, id="start-spec-example"),
    pytest.param(START, FULL_START, id="start-every-field"),
    pytest.param(START, {"enable_dialogflow": True}, id="start-dialogflow"),
    pytest.param(START, {**S, "client_state": ""}, id="start-empty-client-state"),
    pytest.param(START, {**S, "client_state": "YQ=="}, id="start-padding"),
    pytest.param(START, {**S, "send_silence_when_idle": True, "x": {"y": [1]}}, id="start-unknown"),
    pytest.param(STOP, {}, id="stop-empty"),
    pytest.param(STOP, {"stream_id": UUID.upper(), "client_state": STATE, "command_id": "c"}, id="stop-full"),
    pytest.param(HANGUP, {}, id="hangup-empty"),
    pytest.param(HANGUP, {"client_state": STATE, "command_id": "c", "custom_headers": [{"name": "a", "value": "b"}]}),
    pytest.param(ANSWER, {}, id="answer-empty"),
    # The SDKs send a list of URLs per event (telnyx-python 4.x); the reference spec shows one URL.
    pytest.param(ANSWER, {"webhook_urls": {"call.hangup": [WSS.replace("wss", "https")]}}, id="answer-url-list"),
    pytest.param(
        ANSWER,
        {
            "stream_url": WSS,
            "stream_track": "inbound_track",
            "stream_codec": "default",
            "stream_bidirectional_mode": "mp3",
            "stream_bidirectional_codec": "PCMU",
            "stream_bidirectional_target_legs": "opposite",
            "send_silence_when_idle": False,
            "client_state": STATE,
            "command_id": "c",
            "webhook_url": "https://example.com/hook",
            "webhook_url_method": "POST",
        },
        id="answer-full",
    ),
    pytest.param(DIAL, DIAL_MIN, id="dial-minimal"),
    pytest.param(DIAL, {**DIAL_MIN, "to": "+18004247767,200"}, id="dial-dtmf-suffix"),
    pytest.param(DIAL, {**DIAL_MIN, "to": ["+18005550100", "sip:username@sip.telnyx.com"]}, id="dial-list"),
    pytest.param(DIAL, {**DIAL_MIN, "timeout_secs": 5, "from_display_name": "José"}, id="dial-bounds"),
    pytest.param(DIAL, FULL_DIAL, id="dial-full"),
]


@pytest.mark.parametrize(("name", "body"), GOOD)
def test_good_body_yields_no_problem(registry: SchemaRegistry, name: str, body: object) -> None:
    assert registry.validate(name, body) == []


@pytest.mark.parametrize("codec", ["pcmu", "Pcmu", "pcma", "g722", "l16", "DEFAULT"])
def test_enums_are_case_sensitive(registry: SchemaRegistry, codec: str) -> None:
    assert registry.validate(START, {**S, "stream_codec": codec}) == [
        Problem(
            "10032",
            "Invalid enumerated value",
            "The value must be one of: AMR-WB, G722, L16, OPUS, PCMA, PCMU, default.",
            "/stream_codec",
        )
    ]


@pytest.mark.parametrize(
    ("name", "body", "problem"),
    [
        (
            "dial",
            {**DIAL_MIN, "to": "x"},
            Problem(
                "10016", "Phone number must be in +E164 format", "The 'to' parameter must be in E164 format.", "/to"
            ),
        ),
        (
            "dial",
            {"connection_id": "1", "from": "+18005550101"},
            Problem(
                "10004", "Missing required parameter", "The 'to' parameter is required and cannot be blank.", "/to"
            ),
        ),
        (
            "dial",
            {**DIAL_MIN, "timeout_secs": 1},
            Problem(
                "10033", "Value outside of range", "The value is outside of allowed range 5 to 600", "/timeout_secs"
            ),
        ),
        (
            "streaming_start",
            {"stream_url": WSS, "stream_track": 2},
            Problem("10015", "Invalid value", "The 'stream_track' parameter must be a string.", "/stream_track"),
        ),
        (
            "streaming_start",
            {"stream_url": WSS, "stream_track": "x"},
            Problem(
                "10032",
                "Invalid enumerated value",
                "The value must be one of: both_tracks, inbound_track, outbound_track.",
                "/stream_track",
            ),
        ),
        (
            "streaming_start",
            {"stream_url": WSS, "stream_bidirectional_sampling_rate": 1},
            Problem(
                "10032",
                "Invalid enumerated value",
                "The value must be one of: 8000, 16000, 22050, 24000, 48000.",
                "/stream_bidirectional_sampling_rate",
            ),
        ),
        (
            "streaming_start",
            {"stream_url": WSS, "stream_auth_token": "t" * 4001},
            Problem(
                "10033",
                "Value outside of range",
                "The 'stream_auth_token' parameter must have at most 4000 characters.",
                "/stream_auth_token",
            ),
        ),
        (
            "streaming_start",
            {"stream_url": WSS, "client_state": "abc"},
            Problem(
                "90017",
                "Invalid value for client_state",
                "The 'client_state' parameter must be a valid base64 string.",
                "/client_state",
            ),
        ),
        (
            "streaming_start",
            {"stream_url": "http://example.com"},
            Problem(
                "10003",
                "Invalid URL",
                "The 'stream_url' parameter must be a ws:// or wss:// URL of at most 2000 characters.",
                "/stream_url",
            ),
        ),
        (
            "streaming_start",
            {"stream_url": WSS, "custom_parameters": [{"name": None, "value": "v"}]},
            Problem(
                "10015",
                "Invalid value",
                "The 'custom_parameters[0].name' parameter must be a string.",
                "/custom_parameters/0/name",
            ),
        ),
        (
            "streaming_stop",
            {"stream_id": "x"},
            Problem("10015", "Invalid value", "The 'stream_id' parameter must be a UUID.", "/stream_id"),
        ),
        (
            "dial",
            {**DIAL_MIN, "to": 1},
            Problem(
                "10016", "Phone number must be in +E164 format", "The 'to' parameter must be in E164 format.", "/to"
            ),
        ),
        (
            "dial",
            {**DIAL_MIN, "from_display_name": "<b>"},
            Problem(
                "10015",
                "Invalid value",
                "The 'from_display_name' parameter has an invalid format.",
                "/from_display_name",
            ),
        ),
        (
            "dial",
            {**DIAL_MIN, "record_custom_file_name": ""},
            Problem(
                "10033",
                "Value outside of range",
                "The 'record_custom_file_name' parameter must have between 1 and 40 characters.",
                "/record_custom_file_name",
            ),
        ),
        ("hangup", 3, Problem("10015", "Invalid request body", "The request body must be a JSON object.", None)),
    ],
)
def test_problem_texts(registry: SchemaRegistry, name: str, body: object, problem: Problem) -> None:
    assert registry.validate(name, body) == [problem]


def test_unknown_schema_name_raises_key_error(registry: SchemaRegistry) -> None:
    with pytest.raises(KeyError):
        registry.validate("no_such_action", {})


def test_validators_are_built_once_on_first_use(registry: SchemaRegistry) -> None:
    # Rebuilding a validator per request would cost more than the validation itself.
    assert registry.validate(START, SPEC_EXAMPLE) == []
    assert registry.validator(START) is registry.validator(START)
    assert registry.fast_validator(START) is registry.fast_validator(START)


def test_every_code_the_schemas_produce_is_documented() -> None:
    found = {"10003", "10004", "10015", "10016", "10032", "10033", "90017"}
    for path in default_schema_dir().glob("*.schema.json"):
        found |= set(re.findall(r'"x-telnyx-code": "(\d+)"', path.read_text(encoding="utf-8")))
    docs = (default_schema_dir().parent / "docs" / "errors.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(\d+)` \| 422 \|", docs, flags=re.MULTILINE))
    assert found <= documented


# --- SchemaError: a bad schema directory names the file ---------------------------------------------------------

GOOD_SCHEMA = '{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "Expecting property name"),
        ("[1, 2]", "the top level must be a JSON object"),
        ('{"type": "nope"}', "at /type: "),
        ('{"properties": {"a": {"pattern": "("}}}', "at /properties/a/pattern: "),
        ('{"$schema": "http://json-schema.org/draft-07/schema#"}', "$schema must be"),
        (
            '{"properties": {"a": {"x-telnyx-code": 10003, "x-telnyx-title": "t"}}}',
            "at /properties/a/x-telnyx-code: must be a string",
        ),
        ('{"properties": {"a": {"x-telnyx-code": "E1", "x-telnyx-title": "t"}}}', "must be a digit string"),
        (
            '{"properties": {"a": {"x-telnyx-code": "10003"}}}',
            "at /properties/a: x-telnyx-code needs an x-telnyx-title",
        ),
    ],
)
def test_bad_schema_file_raises_schema_error_naming_it(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "answer.schema.json").write_text(GOOD_SCHEMA)
    (tmp_path / "dial.schema.json").write_text(text)
    with pytest.raises(SchemaError) as info:
        SchemaRegistry.load(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'dial.schema.json'}: ")
    assert message in str(info.value)


def test_undecodable_schema_file_raises_schema_error(tmp_path: Path) -> None:
    (tmp_path / "dial.schema.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(SchemaError, match=r"dial\.schema\.json: "):
        SchemaRegistry.load(tmp_path)


@pytest.mark.parametrize("subdir", ["empty", "missing"])
def test_directory_without_schemas_raises_schema_error(tmp_path: Path, subdir: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.json").write_text("{}")
    with pytest.raises(SchemaError, match="no \\*.schema.json files"):
        SchemaRegistry.load(tmp_path / subdir)


def test_registry_uses_only_the_given_directory(tmp_path: Path) -> None:
    (tmp_path / "ping.schema.json").write_text(GOOD_SCHEMA)
    registry = SchemaRegistry.load(tmp_path)
    assert registry.names() == {"ping"}
    assert registry.validate("ping", {"anything": 1}) == []


def test_keywords_without_a_mapping_fall_back_to_10015(tmp_path: Path) -> None:
    schema = {"properties": {"a": False, "b": {"not": {"type": "string"}}}, "additionalProperties": False}
    (tmp_path / "strict.schema.json").write_text(json.dumps(schema))
    problems = SchemaRegistry.load(tmp_path).validate("strict", {"a": 1, "b": "x", "c": 3})
    # jsonschema reports a `false` subschema without its path, so it lands on the body like additionalProperties.
    assert problems == [
        Problem("10015", "Invalid value", "The request body is invalid.", None),
        Problem("10015", "Invalid value", "The 'b' parameter is invalid.", "/b"),
    ]
