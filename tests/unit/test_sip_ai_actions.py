"""The SIP-level and AI actions as pure functions: send_sip_info, siprec_*, switch_supervisor_role, the AI
assistant, gather_using_ai and Conversation Relay, and how gather_using_ai fills its parameters."""

from __future__ import annotations

import pytest

from emulator.api.schemas import SchemaRegistry, default_schema_dir
from emulator.calls import ai_fields, reactions
from emulator.calls.actions import ACTIONS, ai
from emulator.calls.actions.context import CommandContext
from emulator.calls.effects import Emit, PlayClip, StartMedia, StartTimer
from emulator.calls.ids import IdFactory
from emulator.calls.models import CallState, Direction
from emulator.calls.store import CallStore, transition
from emulator.errors import ApiError
from emulator.scenarios.cursor import End

SIP_AI_ACTIONS = {
    "send_sip_info": {"content_type": "application/json", "body": "{}"},
    "siprec_start": {},
    "siprec_stop": {},
    "switch_supervisor_role": {"role": "monitor"},
    "ai_assistant_start": {},
    "ai_assistant_stop": {},
    "ai_assistant_join": {"conversation_id": "c", "participant": {"id": "v3:x", "role": "user"}},
    "ai_assistant_add_messages": {"messages": []},
    "gather_using_ai": {"parameters": {}},
    "conversation_relay_start": {"url": "wss://relay.example.com/ws"},
    "conversation_relay_stop": {},
}
AGE_AND_CITY = {
    "type": "object",
    "properties": {"age": {"type": "integer"}, "city": {"type": "string"}},
    "required": ["age", "city"],
}

TOO_FAST = {"type": "telnyx", "voice_speed": 3}
TOOL_ANSWER = {"role": "tool", "content": "x"}  # without the tool_call_id it answers


def setup():
    ids = IdFactory(seed=1)
    store = CallStore(ids)
    ctx = CommandContext(ids=ids, user_id="user", call_codec="PCMU", scenario="default", now=0, timestamp="T0")
    call = store.lookup("v3:c", now=0)
    call.has_media = True  # as if answered with its media running: no StartMedia in the outcomes
    return ctx, store, call


def emitted(outcome_or_effects):
    effects = getattr(outcome_or_effects, "effects", outcome_or_effects)
    return [(e.event_type, e.payload) for e in effects if isinstance(e, Emit)]


def kinds(outcome_or_effects):
    return [event for event, _ in emitted(outcome_or_effects)]


def refused(action, ctx, store, call, body):
    with pytest.raises(ApiError) as info:
        ACTIONS[action].run(ctx, store, call, body)
    return info.value.problems[0]


# -- the registry --------------------------------------------------------------------------------


@pytest.mark.parametrize("action", sorted(SIP_AI_ACTIONS))
def test_each_action_needs_an_answered_call(action):
    ctx, store, _ = setup()
    ringing = store.create(
        direction=Direction.INCOMING, state=CallState.PARKED, from_="+1", to="+2", connection_id="1", now=0
    )
    assert refused(action, ctx, store, ringing, SIP_AI_ACTIONS[action]).code == "90034"
    transition(ringing, CallState.ENDED, now=1)
    assert refused(action, ctx, store, ringing, SIP_AI_ACTIONS[action]).code == "90018"


@pytest.mark.parametrize("action", sorted(SIP_AI_ACTIONS))
def test_each_action_has_a_schema_its_example_body_passes(action):
    registry = SchemaRegistry.load(default_schema_dir())
    assert ACTIONS[action].schema == action
    assert registry.validate(action, SIP_AI_ACTIONS[action]) == []


@pytest.mark.parametrize(
    ("action", "body", "found"),
    [
        ("send_sip_info", {"body": "x"}, "10004 /content_type"),
        ("send_sip_info", {"content_type": "application/json", "body": ""}, "10004 /body"),
        ("send_sip_info", {"content_type": "json", "body": "x"}, "10015 /content_type"),
        ("send_sip_info", {"content_type": "text/plain", "body": "x" * 1401}, "10033 /body"),
        ("siprec_start", {"siprec_track": "both"}, "10032 /siprec_track"),
        ("siprec_start", {"sip_transport": "sctp"}, "10032 /sip_transport"),
        ("siprec_start", {"session_timeout_secs": 30}, "10033 /session_timeout_secs"),
        ("switch_supervisor_role", {}, "10004 /role"),
        ("switch_supervisor_role", {"role": "listen"}, "10032 /role"),
        ("ai_assistant_start", {"assistant": {"name": "x"}}, "10004 /assistant/id"),
        ("ai_assistant_start", {"voice_settings": TOO_FAST}, "10033 /voice_settings/voice_speed"),
        ("ai_assistant_start", {"transcription": {"model": "whisper"}}, "10032 /transcription/model"),
        ("ai_assistant_start", {"client_state": "not base64!"}, "90017 /client_state"),
        ("ai_assistant_join", {"conversation_id": "c", "participant": {"id": "v3:x"}}, "10004 /participant/role"),
        ("ai_assistant_add_messages", {"messages": [TOOL_ANSWER]}, "10004 /messages/0/tool_call_id"),
        ("ai_assistant_add_messages", {"messages": [{"role": "robot"}]}, "10032 /messages/0/role"),
        ("gather_using_ai", {}, "10004 /parameters"),
        ("gather_using_ai", {"parameters": {}, "language": "klingon"}, "10032 /language"),
        ("conversation_relay_start", {"url": "https://relay.example.com"}, "10003 /url"),
        ("conversation_relay_start", {"conversation_relay_settings": {}}, "10004 /conversation_relay_settings/url"),
        ("conversation_relay_start", {"interruptible": "always", "url": "ws://h"}, "10032 /interruptible"),
    ],
)  # fmt: skip
def test_bad_bodies_point_at_the_field(action, body, found):
    problems = SchemaRegistry.load(default_schema_dir()).validate(action, body)
    assert f"{problems[0].code} {problems[0].pointer}" == found


def test_a_relay_without_any_url_is_10004_at_url():
    ctx, store, call = setup()
    problem = refused("conversation_relay_start", ctx, store, call, {"greeting": "hi"})
    assert problem.code == "10004" and problem.pointer == "/url" and "conversation_relay_url" in problem.detail
    assert call.conversation is None and call.client_state is None


# -- SIP -----------------------------------------------------------------------------------------


def test_send_sip_info_is_kept_on_the_call_and_a_bridged_leg_receives_it():
    ctx, store, call = setup()
    body = {"content_type": "application/json", "body": '{"a": 1}', "client_state": "aGk="}
    outcome = ACTIONS["send_sip_info"].run(ctx, store, call, body)
    assert outcome.data == {"result": "ok"} and outcome.effects == ()
    assert call.sip_info[0].content_type == "application/json" and call.client_state == "aGk="
    other = store.lookup("v3:other", now=0)
    call.bridged_to, other.bridged_to = other, call
    ((event, payload),) = emitted(ACTIONS["send_sip_info"].run(ctx, store, call, body))
    assert event == "call.sip_info.received" and payload["call_control_id"] == "v3:other"
    assert payload["content_type"] == "application/json" and payload["body"] == '{"a": 1}'
    assert len(call.sip_info) == 2


def test_siprec_starts_once_and_stops_with_normal_clearing():
    ctx, store, call = setup()
    started = ACTIONS["siprec_start"].run(ctx, store, call, {"connector_name": "srs", "client_state": "aGk="})
    ((event, payload),) = emitted(started)
    assert event == "siprec.started" and payload["client_state"] == "aGk=" and payload["call_control_id"] == "v3:c"
    assert call.siprec is not None and call.siprec.track == "both_tracks" and call.siprec.session_timeout_secs == 1800
    assert refused("siprec_start", ctx, store, call, {}).title == "SIPREC session already running"
    ((event, payload),) = emitted(ACTIONS["siprec_stop"].run(ctx, store, call, {}))
    assert event == "siprec.stopped" and payload["hangup_cause"] == "normal_clearing" and call.siprec is None
    assert refused("siprec_stop", ctx, store, call, {}).code == "10015"


def test_an_unreachable_connector_fails_and_leaves_no_session():
    ctx, store, call = setup()
    ((event, payload),) = emitted(ACTIONS["siprec_start"].run(ctx, store, call, {"connector_name": "unreachable-srs"}))
    assert event == "siprec.failed" and payload["failure_cause"] == "no_answer" and call.siprec is None


def test_the_calls_end_stops_siprec_after_the_hangup():
    ctx, store, call = setup()
    ACTIONS["siprec_start"].run(ctx, store, call, {})
    assert kinds(ACTIONS["hangup"].run(ctx, store, call, {})) == ["call.hangup", "siprec.stopped"]


def test_switch_supervisor_role_keeps_the_role_and_sends_nothing():
    ctx, store, call = setup()
    assert ACTIONS["switch_supervisor_role"].run(ctx, store, call, {"role": "whisper"}).effects == ()
    assert call.supervisor_role == "whisper"


# -- AI assistant and Conversation Relay ---------------------------------------------------------


def test_an_assistant_says_its_greeting_with_its_variables_and_keeps_its_conversation():
    ctx, store, call = setup()
    body = {
        "assistant": {"id": "assistant-1", "model": "openai/gpt-4o", "dynamic_variables": {"name": "Ada"}},
        "greeting": "Hello {{ name }}, you called {{telnyx_call_to}}",
        "message_history": [{"role": "system", "content": "Be brief."}],
        "voice": "AWS.Polly.Joanna-Neural",
    }
    outcome = ACTIONS["ai_assistant_start"].run(ctx, store, call, body)
    assert outcome.data == {"result": "ok", "conversation_id": call.conversation.conversation_id}
    (play,) = outcome.effects
    assert isinstance(play, PlayClip) and play.clip.kind == "gather"  # speech without call.speak.* webhooks
    assert play.clip.text == f"Hello Ada, you called {call.to}" and play.clip.voice == "AWS.Polly.Joanna-Neural"
    assert [m["role"] for m in call.conversation.messages] == ["system", "assistant"]
    ACTIONS["ai_assistant_add_messages"].run(ctx, store, call, {"messages": [{"role": "user", "content": "hi"}]})
    reactions.caller_said(call, "I need help", True)
    reactions.caller_said(call, "I need", False)  # a partial result is not a message
    assert [m["content"] for m in call.conversation.messages[2:]] == ["hi", "I need help"]
    assert refused("ai_assistant_start", ctx, store, call, {}).title == "Conversation already running"
    assert refused("conversation_relay_start", ctx, store, call, SIP_AI_ACTIONS["conversation_relay_start"]).code == (
        "10015"
    )
    ((event, payload),) = emitted(ACTIONS["ai_assistant_stop"].run(ctx, store, call, {}))
    assert event == "call.conversation.ended" and call.conversation is None
    assert payload["assistant_id"] == "assistant-1" and payload["llm_model"] == "openai/gpt-4o"
    assert payload["stt_model"] == "distil-whisper/distil-large-v2" and payload["reason"] is None
    assert (payload["tts_provider"], payload["tts_model_id"], payload["tts_voice_id"]) == (
        "aws",
        "Polly",
        "Joanna-Neural",
    )
    assert payload["calling_party_type"] == "pstn" and payload["duration_sec"] == 0
    assert refused("ai_assistant_stop", ctx, store, call, {}).title == "No AI assistant"
    assert refused("ai_assistant_add_messages", ctx, store, call, {}).code == "10015"


def test_an_assistant_ends_after_the_hangup_with_customer_disconnect_when_the_far_end_hangs_up():
    ctx, store, call = setup()
    ACTIONS["ai_assistant_start"].run(ctx, store, call, {"assistant": {"id": "a"}})
    call.media_ticks = 150  # three seconds of the call's media
    outcome = reactions.caller_done(ctx, call, _hangup_end())
    assert kinds(outcome)[:2] == ["call.hangup", "call.conversation.ended"]
    payload = emitted(outcome)[1][1]
    assert payload["reason"] == "customer_disconnect" and payload["duration_sec"] == 3


def test_a_leg_joins_a_running_conversation_and_can_end_it_by_hanging_up():
    ctx, store, owner = setup()
    conversation_id = ACTIONS["ai_assistant_start"].run(ctx, store, owner, {}).data["conversation_id"]
    leg = store.lookup("v3:leg", now=0)
    unknown = {"conversation_id": "nope", "participant": {"id": "v3:leg", "role": "user"}}
    assert refused("ai_assistant_join", ctx, store, leg, unknown).pointer == "/conversation_id"
    participant = {"id": "v3:leg", "role": "user", "on_hangup": "end_conversation"}
    joined = ACTIONS["ai_assistant_join"].run(
        ctx, store, leg, {"conversation_id": conversation_id, "participant": participant}
    )
    assert joined.data == {"result": "ok", "conversation_id": conversation_id}
    assert owner.conversation.participants == [participant] and leg.joined.owner is owner
    ended = emitted(ACTIONS["hangup"].run(ctx, store, leg, {}))
    assert [event for event, _ in ended] == ["call.hangup", "call.conversation.ended"]
    assert ended[1][1]["call_control_id"] == owner.call_control_id and owner.conversation is None


@pytest.mark.parametrize(
    ("body", "url"),
    [
        ({"url": "ws://a", "conversation_relay_url": "ws://b", "conversation_relay_settings": {"url": "ws://c"}}, "ws://a"),
        ({"conversation_relay_url": "ws://b", "conversation_relay_settings": {"url": "ws://c"}}, "ws://b"),
        ({"conversation_relay_settings": {"url": "ws://c"}}, "ws://c"),
    ],
)  # fmt: skip
def test_a_relay_keeps_the_url_that_wins_and_stops_with_call_conversation_ended(body, url):
    ctx, store, call = setup()
    outcome = ACTIONS["conversation_relay_start"].run(ctx, store, call, {**body, "voice": "xAI.eve"})
    assert outcome.data == {"result": "ok", "conversation_relay_id": call.conversation.conversation_id}
    assert call.conversation.url == url and outcome.effects == ()
    assert refused("ai_assistant_stop", ctx, store, call, {}).code == "10015"  # a relay is not an assistant
    ((event, payload),) = emitted(ACTIONS["conversation_relay_stop"].run(ctx, store, call, {}))
    assert event == "call.conversation.ended" and payload["conversation_id"] == outcome.data["conversation_relay_id"]
    assert payload["tts_provider"] == "xai" and payload["tts_voice_id"] == "eve" and "tts_model_id" not in payload
    assert refused("conversation_relay_stop", ctx, store, call, {}).title == "No Conversation Relay"


# -- gather_using_ai -----------------------------------------------------------------------------


def test_the_greeting_is_said_and_the_silence_counted_from_its_end():
    ctx, store, call = setup()
    body = {"parameters": AGE_AND_CITY, "greeting": "Your age and city?", "send_message_history_updates": True}
    outcome = ACTIONS["gather_using_ai"].run(ctx, store, call, body)
    assert outcome.data == {"result": "ok", "conversation_id": call.ai_gather.conversation_id}
    play, updated = outcome.effects
    assert isinstance(play, PlayClip) and play.clip.text == "Your age and city?"
    assert updated.event_type == "call.ai_gather.message_history_updated"
    assert updated.payload["message_history"] == [{"role": "assistant", "content": "Your age and city?"}]
    (timer,) = reactions.clip_event(call, "ended", "gather", "completed", {}).effects
    assert isinstance(timer, StartTimer) and timer.after_ms == 10000 and timer.cue.what == ai.SILENCE_CUE
    assert reactions.clip_event(call, "ended", "gather", "completed", {}).effects == ()  # once


def test_the_callers_words_fill_the_parameters_and_end_the_gather_valid():
    ctx, store, call = setup()
    body = {"parameters": AGE_AND_CITY, "greeting": "Age and city?", "send_partial_results": True,
            "gather_ended_speech": "Thanks!", "client_state": "Z2F0aGVy"}  # fmt: skip
    conversation_id = ACTIONS["gather_using_ai"].run(ctx, store, call, body).data["conversation_id"]
    outcome = reactions.caller_said(call, "I'm 29 and I live in Paris", True)
    assert kinds(outcome) == ["call.ai_gather.partial_results", "call.ai_gather.ended", "call.conversation.ended"]
    ended = emitted(outcome)[1][1]
    assert ended["status"] == "valid" and ended["result"] == {"age": 29, "city": "I'm 29 and I live in Paris"}
    assert ended["message_history"] == [
        {"role": "assistant", "content": "Age and city?"},
        {"role": "user", "content": "I'm 29 and I live in Paris"},
    ]
    assert ended["client_state"] == "Z2F0aGVy" and ended["from"] == call.from_
    over = emitted(outcome)[2][1]
    assert over["conversation_id"] == conversation_id and over["llm_model"] == "Qwen/Qwen3-235B-A22B"
    assert isinstance(outcome.effects[-1], PlayClip) and outcome.effects[-1].clip.text == "Thanks!"
    assert call.ai_gather is None


def test_missing_required_fields_wait_for_more_words_and_the_silence_ends_the_gather_invalid():
    ctx, store, call = setup()
    ACTIONS["gather_using_ai"].run(ctx, store, call, {"parameters": AGE_AND_CITY, "user_response_timeout_ms": 500})
    first = reactions.caller_said(call, "Paris", True).effects
    assert call.ai_gather.result == {"city": "Paris"} and isinstance(first[-1], StartTimer)
    stale = first[-1].cue
    second = reactions.caller_said(call, "hmm", True).effects[-1]
    assert reactions.cue_due(ctx, call, stale).effects == ()  # the caller spoke since: a stale timer
    outcome = reactions.cue_due(ctx, call, second.cue)
    assert kinds(outcome) == ["call.ai_gather.ended", "call.conversation.ended"]
    assert emitted(outcome)[0][1]["status"] == "invalid" and emitted(outcome)[0][1]["result"] == {"city": "Paris"}


def test_without_a_greeting_the_silence_counts_at_once_and_the_media_starts_on_a_made_up_call():
    ctx, store, call = setup()
    call.has_media = False
    media, timer = ACTIONS["gather_using_ai"].run(ctx, store, call, {"parameters": {}}).effects
    assert isinstance(media, StartMedia) and isinstance(timer, StartTimer)
    assert refused("gather_using_ai", ctx, store, call, {"parameters": {}}).title == "AI gather already running"


def test_a_hangup_during_the_gather_ends_it_after_call_hangup():
    ctx, store, call = setup()
    ACTIONS["gather_using_ai"].run(ctx, store, call, {"parameters": AGE_AND_CITY})
    outcome = ACTIONS["hangup"].run(ctx, store, call, {})
    assert kinds(outcome) == ["call.hangup", "call.ai_gather.ended", "call.conversation.ended"]
    assert emitted(outcome)[1][1]["status"] == "invalid" and emitted(outcome)[2][1]["reason"] is None


# -- how the caller's words fill parameters ------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "words", "result"),
    [
        ({"name": {"type": "string"}}, "Ada Lovelace", {"name": "Ada Lovelace"}),
        ({"a": {"type": "string"}, "b": {"type": "string"}}, "one", {"a": "one"}),  # one free text per utterance
        ({"n": {"type": "integer"}, "m": {"type": "number"}}, "2 then 3.5", {"n": 2, "m": 3.5}),
        ({"n": {"type": "integer"}}, "no digits", {}),
        ({"ok": {"type": "boolean"}}, "Yes please", {"ok": True}),
        ({"ok": {"type": "boolean"}}, "nope", {"ok": False}),
        ({"size": {"enum": ["small", "extra large"]}}, "An Extra Large one", {"size": "extra large"}),
        ({"size": {"type": "string", "enum": ["S", "M"]}}, "large", {}),
        ({"x": {"type": ["string", "null"]}, "o": {"type": "object"}}, "hi", {"x": "hi"}),
        ({"bad": 5, "list": {"type": "array"}}, "anything", {}),
    ],
)
def test_each_property_type_takes_its_part_of_the_words(schema, words, result):
    found: dict = {}
    ai_fields.fill({"properties": schema}, words, found)
    assert found == result


def test_required_decides_completeness_and_odd_parameters_never_break():
    assert ai_fields.is_complete({"required": ["a"]}, {"a": 1}) and not ai_fields.is_complete({"required": ["a"]}, {})
    assert ai_fields.is_complete({}, {}) and ai_fields.is_complete({"required": "a"}, {})
    assert ai_fields.fill({"properties": ["a"]}, "x", {}) == []


def _hangup_end():
    return End(reason="hangup", at_ms=0)
