"""AI commands: ai_assistant_start/stop/join/add_messages, gather_using_ai, conversation_relay_start/stop (pure).

There is no language model. An assistant or a Conversation Relay is kept on the call (its configuration, its
conversation: the seeded history, the greeting, the app's messages and the caller's words) and its greeting is
spoken to the caller; it never answers. ``call.conversation.ended`` is sent when it is stopped or the call ends.
gather_using_ai fills its ``parameters`` from the scripted caller's words (``calls/ai_fields.py``): they end it
with ``call.ai_gather.ended`` (status ``valid``), or the caller's silence does (``invalid``). docs/ai.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from emulator.calls import ai_fields, events
from emulator.calls.actions.context import OK, CommandContext, clip_key, ensure_media, note_client_state
from emulator.calls.actions.transcription import spoken_words
from emulator.calls.effects import ClipRequest, Cue, Effect, Emit, Outcome, PlayClip, StartTimer
from emulator.calls.models import Call
from emulator.calls.sessions import AiGather, Conversation, JoinedConversation
from emulator.calls.store import CallStore
from emulator.errors import Problem, ValidationFailed

# Telnyx's documented defaults, named in call.conversation.ended when the body names none.
DEFAULT_VOICE = "Telnyx.KokoroTTS.af"
DEFAULT_STT_MODEL = "distil-whisper/distil-large-v2"
DEFAULT_GATHER_MODEL = "Qwen/Qwen3-235B-A22B"
DEFAULT_RESPONSE_TIMEOUT_MS = 10000
SILENCE_CUE = "call.ai_gather.silence"  # the caller said nothing for user_response_timeout_ms
FRAME_MS = 20  # one tick of the call's media: duration_sec counts them
_TEMPLATE = re.compile(r"\{\{\s*([\w.-]+)\s*\}\}")
_NOT_KEPT = ("client_state", "command_id")
_ASSISTANT_FIELDS = (("assistant_id", "id"), ("llm_model", "model"))  # call.conversation.ended <- assistant


def ai_assistant_start(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """An assistant joins the call: it says its greeting and listens; there is no model to answer."""
    _require_no_conversation(call)
    note_client_state(call, body)
    assistant = body.get("assistant") or {}
    conversation = Conversation("assistant", ctx.ids.uuid4(), _config(body), ctx.timestamp, call.media_ticks)
    conversation.messages.extend(dict(message) for message in body.get("message_history", []))
    conversation.participants.extend(dict(participant) for participant in body.get("participants", []))
    call.conversation = conversation
    effects: list[Effect] = [*ensure_media(call)]
    greeting = body.get("greeting") or assistant.get("greeting")
    if greeting:
        variables = {"telnyx_call_to": call.to, "telnyx_call_from": call.from_}
        variables |= {key: str(value) for key, value in (assistant.get("dynamic_variables") or {}).items()}
        said = _TEMPLATE.sub(lambda found: variables.get(found.group(1), found.group(0)), greeting)
        conversation.messages.append({"role": "assistant", "content": said})
        effects.append(_speech(call, said, body.get("voice")))
    return Outcome({**OK, "conversation_id": conversation.conversation_id}, tuple(effects))


def ai_assistant_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    _require_conversation(call, "assistant")
    note_client_state(call, body)
    return Outcome(OK, end_conversation(call, None))


def ai_assistant_add_messages(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """Messages added to the running assistant's conversation (kept; nothing answers them)."""
    conversation = _require_conversation(call, "assistant")
    note_client_state(call, body)
    conversation.messages.extend(dict(message) for message in body.get("messages", []))
    return Outcome(OK)


def ai_assistant_join(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """This leg joins an assistant's conversation running on a call of the same API key, as ``participant``."""
    conversation_id = body["conversation_id"]
    owner = next(
        (
            other
            for other in store.calls.values()
            if other.is_alive
            and other.conversation is not None
            and other.conversation.kind == "assistant"
            and other.conversation.conversation_id == conversation_id
        ),
        None,
    )
    if owner is None or owner.conversation is None:
        detail = "No AI assistant conversation with this conversation_id is running."
        raise ValidationFailed([Problem("10015", "Invalid value", detail, "/conversation_id")])
    note_client_state(call, body)
    participant = dict(body["participant"])
    owner.conversation.participants.append(participant)
    call.joined = JoinedConversation(conversation_id, participant, owner)
    return Outcome({**OK, "conversation_id": conversation_id})


def conversation_relay_start(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """A Conversation Relay session starts: kept on the call with its greeting spoken; the emulator does not
    connect to the relay's WebSocket."""
    settings = body.get("conversation_relay_settings") or {}
    # Top-level fields win over the nested settings, and url over conversation_relay_url.
    url = body.get("url") or body.get("conversation_relay_url") or settings.get("url")
    if not url:  # Telnyx's anyOf; checked here so that the error points at /url
        detail = "One of url, conversation_relay_url or conversation_relay_settings.url is required."
        raise ValidationFailed([Problem("10004", "Missing required parameter", detail, "/url")])
    _require_no_conversation(call)
    note_client_state(call, body)
    conversation = Conversation("relay", ctx.ids.uuid4(), _config(body), ctx.timestamp, call.media_ticks, url=url)
    call.conversation = conversation
    effects: list[Effect] = [*ensure_media(call)]
    if body.get("greeting"):
        conversation.messages.append({"role": "assistant", "content": body["greeting"]})
        effects.append(_speech(call, body["greeting"], body.get("voice")))
    return Outcome({**OK, "conversation_relay_id": conversation.conversation_id}, tuple(effects))


def conversation_relay_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    _require_conversation(call, "relay")
    note_client_state(call, body)
    return Outcome(OK, end_conversation(call, None))


def gather_using_ai(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """The greeting is spoken, then the caller's words fill ``parameters`` until every required one is given,
    or the caller stays silent for user_response_timeout_ms (counted from the greeting's end)."""
    if call.ai_gather is not None:
        detail = "The call is already gathering with gather_using_ai; it must end first."
        raise ValidationFailed([Problem("10015", "AI gather already running", detail, None)])
    note_client_state(call, body)
    gather = AiGather(
        key=clip_key(call, "ai-gather"),
        conversation_id=ctx.ids.uuid4(),
        parameters=dict(body["parameters"]),
        config=_config(body),
        timeout_ms=int(body.get("user_response_timeout_ms", DEFAULT_RESPONSE_TIMEOUT_MS)),
        send_partial_results=bool(body.get("send_partial_results", False)),
        send_message_history_updates=bool(body.get("send_message_history_updates", False)),
        started_tick=call.media_ticks,
    )
    call.ai_gather = gather
    effects: list[Effect] = [*ensure_media(call)]
    if body.get("greeting"):
        gather.history.append({"role": "assistant", "content": body["greeting"]})
        gather.awaiting_greeting = True
        effects.append(_speech(call, body["greeting"], body.get("voice")))
        effects.extend(_history_updated(call, gather))
    else:
        effects.append(_silence_timer(call, gather))
    return Outcome({**OK, "conversation_id": gather.conversation_id}, tuple(effects))


# -- what happens on the call's media (calls/reactions.py) -------------------------------------


def caller_said(call: Call, text: str, is_final: bool) -> tuple[Effect, ...]:
    """The caller's words, once said: the conversation running hears them, and an AI gather takes them."""
    if not is_final or not call.is_alive:
        return ()
    if call.conversation is not None:
        call.conversation.messages.append({"role": "user", "content": text})
    gather = call.ai_gather
    if gather is None:
        return ()
    gather.history.append({"role": "user", "content": text})
    filled = ai_fields.fill(gather.parameters, text, gather.result)
    effects: list[Effect] = [*_history_updated(call, gather)]
    if filled and gather.send_partial_results:
        payload = events.ai_gather(call, gather.history, partial_results=dict(gather.result))
        effects.append(Emit(call, "call.ai_gather.partial_results", payload))
    if ai_fields.is_complete(gather.parameters, gather.result):
        return (*effects, *_finish_gather(call, "valid", None))
    return (*effects, _silence_timer(call, gather))


def speech_ended(call: Call) -> tuple[Effect, ...]:
    """Speech without webhooks of its own ended (a gather's prompt or a greeting): a gather_using_ai waiting
    for its greeting to end starts counting the caller's silence."""
    gather = call.ai_gather
    if gather is None or not gather.awaiting_greeting or not call.is_alive:
        return ()
    gather.awaiting_greeting = False
    return (_silence_timer(call, gather),)


def silence_timed_out(call: Call, cue: Cue) -> Outcome:
    """The caller said nothing for user_response_timeout_ms: the gather ends with what it has (``invalid``:
    a complete one has already ended). A timer of an earlier turn or gather is stale and does nothing."""
    gather = call.ai_gather
    if gather is None or cue.result != f"{gather.key}#{gather.turn}":
        return Outcome(OK)
    return Outcome(OK, _finish_gather(call, "invalid", None))


def call_ended(call: Call, source: str) -> tuple[Effect, ...]:
    """The call ended: its AI gather and conversation end too, after call.hangup. ``reason`` is
    customer_disconnect when the far end hung up, as in Telnyx's example, and null otherwise."""
    reason = "customer_disconnect" if source == events.far_end_hangup_source(call) else None
    effects: list[Effect] = []
    if call.ai_gather is not None:
        status = "valid" if ai_fields.is_complete(call.ai_gather.parameters, call.ai_gather.result) else "invalid"
        effects.extend(_finish_gather(call, status, reason))
    if call.conversation is not None:
        # A relay's customer_disconnect means the app's WebSocket closed, which never happens here.
        effects.extend(end_conversation(call, reason if call.conversation.kind == "assistant" else None))
    joined = call.joined
    if joined is not None and joined.participant.get("on_hangup") == "end_conversation":
        running = joined.owner.conversation
        if running is not None and running.conversation_id == joined.conversation_id:
            effects.extend(end_conversation(joined.owner, None))
    return tuple(effects)


def end_conversation(call: Call, reason: str | None) -> tuple[Effect, ...]:
    """The assistant or relay stops: call.conversation.ended."""
    conversation, call.conversation = call.conversation, None
    if conversation is None:
        return ()
    config = conversation.config
    details: dict[str, Any] = {}
    if conversation.kind == "assistant":
        assistant = config.get("assistant") or {}
        details |= {key: assistant[field] for key, field in _ASSISTANT_FIELDS if assistant.get(field)}
        details["stt_model"] = (config.get("transcription") or {}).get("model", DEFAULT_STT_MODEL)
    else:
        stt = (config.get("transcription_engine_config") or {}).get("transcription_model")
        if stt:
            details["stt_model"] = stt
    details |= _tts(config.get("voice") or DEFAULT_VOICE, config.get("tts_provider"))
    duration = _seconds_since(call, conversation.started_tick)
    payload = events.conversation_ended(call, conversation.conversation_id, duration, reason, details)
    return (Emit(call, "call.conversation.ended", payload),)


# -- helpers -------------------------------------------------------------------------------------


def _finish_gather(call: Call, status: str, reason: str | None) -> tuple[Effect, ...]:
    """call.ai_gather.ended, then call.conversation.ended, then gather_ended_speech on a call still up."""
    gather, call.ai_gather = call.ai_gather, None
    if gather is None:
        return ()
    ended = events.ai_gather(call, gather.history, result=dict(gather.result), status=status)
    config = gather.config
    details = {
        "llm_model": (config.get("assistant") or {}).get("model", DEFAULT_GATHER_MODEL),
        "stt_model": (config.get("transcription") or {}).get("model", DEFAULT_STT_MODEL),
        **_tts(config.get("voice") or DEFAULT_VOICE, None),
    }
    duration = _seconds_since(call, gather.started_tick)
    over = events.conversation_ended(call, gather.conversation_id, duration, reason, details)
    effects: list[Effect] = [Emit(call, "call.ai_gather.ended", ended), Emit(call, "call.conversation.ended", over)]
    if config.get("gather_ended_speech") and call.is_alive:
        effects.append(_speech(call, config["gather_ended_speech"], config.get("voice")))
    return tuple(effects)


def _history_updated(call: Call, gather: AiGather) -> tuple[Effect, ...]:
    if not gather.send_message_history_updates:
        return ()
    return (Emit(call, "call.ai_gather.message_history_updated", events.ai_gather(call, gather.history)),)


def _silence_timer(call: Call, gather: AiGather) -> StartTimer:
    """The caller's silence from now on; a later timer (the caller spoke again) makes this one stale."""
    gather.turn += 1
    return StartTimer(call, gather.timeout_ms, Cue(SILENCE_CUE, f"{gather.key}#{gather.turn}"))


def _speech(call: Call, text: str, voice: str | None) -> PlayClip:
    """Speech of an AI session: spoken as a gather's prompt is, without call.speak.* webhooks of its own; the
    caller's waits hear it as the app speaking. SSML (for AWS.Polly voices) is spoken without its tags."""
    ssml = text.lstrip().startswith("<speak")
    clip = ClipRequest(
        key=clip_key(call, "ai"),
        kind="gather",
        text=text,
        voice=voice or DEFAULT_VOICE,
        ssml=ssml,
        transcript=spoken_words(text, ssml),
    )
    return PlayClip(call, clip)


def _tts(voice: str, provider: str | None) -> dict[str, str]:
    """call.conversation.ended's tts_* fields from a voice name: Provider.Model.Voice (Telnyx.KokoroTTS.af),
    Provider.Voice (xAI.eve), or a bare name."""
    head, dot, rest = voice.partition(".")
    if not dot:
        return {"tts_voice_id": voice} | ({"tts_provider": provider} if provider else {})
    model, _, voice_id = rest.rpartition(".")
    fields = {"tts_provider": provider or head.lower(), "tts_voice_id": voice_id}
    return fields | ({"tts_model_id": model} if model else {})


def _seconds_since(call: Call, tick: int) -> int:
    """Whole seconds of the call's media since ``tick``: the same at any --speed."""
    return max(0, call.media_ticks - tick) * FRAME_MS // 1000


def _config(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in _NOT_KEPT}


def _require_no_conversation(call: Call) -> None:
    # Telnyx: only one AI Assistant or Conversation Relay session can be active on a call at a time.
    if call.conversation is not None:
        running = "an AI assistant" if call.conversation.kind == "assistant" else "a Conversation Relay"
        detail = f"The call already runs {running}; stop it first."
        raise ValidationFailed([Problem("10015", "Conversation already running", detail, None)])


def _require_conversation(call: Call, kind: str) -> Conversation:
    if call.conversation is None or call.conversation.kind != kind:
        running = "an AI assistant" if kind == "assistant" else "a Conversation Relay"
        title = "No AI assistant" if kind == "assistant" else "No Conversation Relay"
        raise ValidationFailed([Problem("10015", title, f"The call does not run {running}.", None)])
    return call.conversation
