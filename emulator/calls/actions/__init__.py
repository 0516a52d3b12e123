"""The Call Control actions: one registry, ``ACTIONS``, from which the routes and the OpenAPI document derive.

An action is one entry: the URL segment of ``POST /v2/calls/{call_control_id}/actions/{name}``, the JSON Schema
of its body (``schemas/{schema}.schema.json``), the pure function that performs it (one module per family:
``call.py``, ``streaming.py``, ``audio.py``), its OpenAPI operation, and the state the call must be in. Adding an action
touches its schema, its family's module, one entry here, and its tests (docs/architecture.md).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.calls.actions import (
    ai,
    audio,
    bridging,
    call,
    forking,
    gather,
    pay,
    queueing,
    recording,
    sip,
    streaming,
    transcription,
)
from emulator.calls.actions.context import Command, CommandContext
from emulator.calls.effects import Outcome
from emulator.calls.models import Call, CallState
from emulator.calls.store import CallStore, require_alive, require_answered


class Requires(enum.Enum):
    """The call state an action needs; otherwise Telnyx's error (90018 ended, 90034 not yet answered)."""

    ALIVE = "alive"
    ANSWERED = "answered"


@dataclass(frozen=True, slots=True)
class Action:
    name: str  # the URL segment
    schema: str  # schemas/<schema>.schema.json
    handler: Command
    operation_id: str  # the OpenAPI operationId (Telnyx's, where it has one)
    summary: str  # the OpenAPI summary
    component: str  # the OpenAPI component name of the request body (Telnyx's)
    requires: Requires = Requires.ALIVE
    # What a call_control_id the emulator has never seen is, in lenient mode: answered, except for
    # `answer`, which meets a ringing call (so answering it sends call.answered and starts its stream).
    lenient_state: CallState = CallState.ANSWERED
    starts_stream: bool = False  # may start a stream, and so meets the --max-streams limit (429)
    result: str = "ActionResult"  # the OpenAPI component of the 200's data
    method: str = "POST"  # the HTTP method Telnyx takes it with; another one is answered 405

    def run(self, ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
        """Check the call's state, then perform the action."""
        if self.requires is Requires.ANSWERED:
            require_answered(call)
        else:
            require_alive(call)
        return self.handler(ctx, store, call, body)


ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action(
            "answer",
            "answer",
            call.answer,
            "answerCall",
            "Answer an incoming call (optionally streaming it to stream_url)",
            "AnswerRequest",
            lenient_state=CallState.PARKED,
            starts_stream=True,
        ),
        Action("hangup", "hangup", call.hangup, "hangupCall", "Hang up a call", "HangupRequest"),
        Action(
            "reject",
            "reject",
            call.reject,
            "RejectCall",
            "Reject a ringing incoming call (call_rejected or user_busy)",
            "RejectRequest",
            lenient_state=CallState.PARKED,
        ),
        Action(
            "client_state_update",
            "client_state_update",
            call.client_state_update,
            "UpdateClientState",
            "Change the client_state later webhooks echo",
            "ClientStateUpdateRequest",
            method="PUT",  # the one action Telnyx takes with PUT (and what the SDKs send)
        ),
        Action(
            "suppression_start",
            "suppression_start",
            audio.suppression_start,
            "noiseSuppressionStart",
            "Turn noise suppression on (noted; the emulator's audio is unchanged)",
            "NoiseSuppressionStart",
            requires=Requires.ANSWERED,
        ),
        Action(
            "suppression_stop",
            "suppression_stop",
            audio.suppression_stop,
            "noiseSuppressionStop",
            "Turn noise suppression off",
            "NoiseSuppressionStop",
            requires=Requires.ANSWERED,
        ),
        Action(
            "streaming_start",
            "streaming_start",
            streaming.streaming_start,
            "startCallStreaming",
            "Stream the call's audio to a WebSocket",
            "StartStreamingRequest",
            requires=Requires.ANSWERED,
            starts_stream=True,
        ),
        Action(
            "streaming_stop",
            "streaming_stop",
            streaming.streaming_stop,
            "stopCallStreaming",
            "Stop one stream (stream_id) or every stream of the call",
            "StopStreamingRequest",
        ),
        Action(
            "speak",
            "speak",
            audio.speak,
            "SpeakCall",
            "Speak text (or SSML) on the call",
            "SpeakRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "playback_start",
            "playback_start",
            audio.playback_start,
            "StartCallPlayback",
            "Play an audio file (audio_url, media_name or playback_content) on the call",
            "PlayAudioUrlRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "playback_stop",
            "playback_stop",
            audio.playback_stop,
            "StopCallPlayback",
            "Stop the audio file playing, or every queued one",
            "PlaybackStopRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "record_start",
            "record_start",
            recording.record_start,
            "StartCallRecord",
            "Record the call (WAV or MP3, one or two channels), served at call.recording.saved's URLs",
            "StartRecordingRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "record_stop",
            "record_stop",
            recording.record_stop,
            "StopCallRecording",
            "Stop recording: the file is written and call.recording.saved sent",
            "StopRecordingRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "record_pause",
            "record_pause",
            recording.record_pause,
            "PauseCallRecording",
            "Pause a recording (the file has no gap)",
            "PauseRecordingRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "record_resume",
            "record_resume",
            recording.record_resume,
            "ResumeCallRecording",
            "Resume a paused recording",
            "ResumeRecordingRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "gather",
            "gather",
            gather.gather,
            "GatherCall",
            "Collect the caller's keys (call.gather.ended)",
            "GatherRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "gather_using_speak",
            "gather_using_speak",
            gather.gather_using_speak,
            "GatherUsingSpeak",
            "Speak a prompt, then collect the caller's keys",
            "GatherUsingSpeakRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "gather_using_audio",
            "gather_using_audio",
            gather.gather_using_audio,
            "GatherUsingAudio",
            "Play a prompt file, then collect the caller's keys",
            "GatherUsingAudioRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "gather_stop",
            "gather_stop",
            gather.gather_stop,
            "StopCallGather",
            "End the gather running now (status cancelled)",
            "StopGatherRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "transcription_start",
            "transcription_start",
            transcription.transcription_start,
            "StartCallTranscription",
            "Transcribe the call: call.transcription webhooks with what each side says",
            "TranscriptionStartRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "transcription_stop",
            "transcription_stop",
            transcription.transcription_stop,
            "StopCallTranscription",
            "Stop transcribing the call",
            "TranscriptionStopRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "fork_start",
            "fork_start",
            forking.fork_start,
            "StartCallFork",
            "Fork the call's audio to UDP targets as RTP (rx: what it receives, tx: what it sends)",
            "StartForkingRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "fork_stop",
            "fork_stop",
            forking.fork_stop,
            "StopCallFork",
            "Stop forking the call's audio",
            "StopForkingRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "enqueue",
            "enqueue",
            bridging.enqueue,
            "EnqueueCall",
            "Put the call at the end of a queue (made on first use): call.enqueued with its position",
            "EnqueueRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "leave_queue",
            "leave_queue",
            queueing.leave_queue,
            "LeaveQueue",
            "Take the call out of its queue: call.dequeued (reason leave)",
            "LeaveQueueRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "refer",
            "refer",
            sip.refer,
            "ReferCall",
            "Refer the far end to a SIP address (SIP REFER); it answers as its scenario says",
            "ReferRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "send_sip_info",
            "send_sip_info",
            sip.send_sip_info,
            "SendSIPInfo",
            "Send a SIP INFO to the far end (a bridged leg gets call.sip_info.received)",
            "SendSIPInfoRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "siprec_start",
            "siprec_start",
            sip.siprec_start,
            "StartSiprecSession",
            "Record the call to a SIPREC connector's server (siprec.started, or siprec.failed)",
            "StartSiprecRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "siprec_stop",
            "siprec_stop",
            sip.siprec_stop,
            "StopSiprecSession",
            "Stop the SIPREC session (siprec.stopped)",
            "StopSiprecRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "switch_supervisor_role",
            "switch_supervisor_role",
            bridging.switch_supervisor_role,
            "SwitchSupervisorRole",
            "Switch the supervisor's role: barge, whisper or monitor",
            "SwitchSupervisorRoleRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "ai_assistant_start",
            "ai_assistant_start",
            ai.ai_assistant_start,
            "CallStartAIAssistant",
            "Start an AI assistant (kept and greeting spoken; no language model answers)",
            "AIAssistantStartRequest",
            requires=Requires.ANSWERED,
            result="ActionResultWithConversationId",
        ),
        Action(
            "ai_assistant_stop",
            "ai_assistant_stop",
            ai.ai_assistant_stop,
            "CallStopAIAssistant",
            "Stop the AI assistant (call.conversation.ended)",
            "AIAssistantStopRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "ai_assistant_join",
            "ai_assistant_join",
            ai.ai_assistant_join,
            "CallJoinAIAssistant",
            "Join this leg to a running AI assistant conversation",
            "AIAssistantJoinRequest",
            requires=Requires.ANSWERED,
            result="ActionResultWithConversationId",
        ),
        Action(
            "ai_assistant_add_messages",
            "ai_assistant_add_messages",
            ai.ai_assistant_add_messages,
            "CallAddMessagesToAIAssistant",
            "Add messages to the AI assistant's conversation",
            "AIAssistantAddMessagesRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "gather_using_ai",
            "gather_using_ai",
            ai.gather_using_ai,
            "callGatherUsingAI",
            "Gather parameters from the scripted caller's words (call.ai_gather.ended)",
            "GatherUsingAIRequest",
            requires=Requires.ANSWERED,
            result="ActionResultWithConversationId",
        ),
        Action(
            "conversation_relay_start",
            "conversation_relay_start",
            ai.conversation_relay_start,
            "CallStartConversationRelay",
            "Start a Conversation Relay session (kept; its WebSocket is not connected to)",
            "ConversationRelayStartRequest",
            requires=Requires.ANSWERED,
            result="ActionResultWithConversationRelayId",
        ),
        Action(
            "conversation_relay_stop",
            "conversation_relay_stop",
            ai.conversation_relay_stop,
            "CallStopConversationRelay",
            "Stop the Conversation Relay session (call.conversation.ended)",
            "ConversationRelayStopRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "send_dtmf",
            "send_dtmf",
            audio.send_dtmf,
            "SendDTMF",
            "Send DTMF tones to the far end",
            "SendDTMFRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "pay",
            "pay",
            pay.pay,
            "PayCall",
            "Collect a card or bank account from the caller's keys, then charge or tokenize it (test numbers decline)",
            "PayRequest",
            requires=Requires.ANSWERED,
        ),
        Action(
            "bridge",
            "bridge",
            bridging.bridge,
            "BridgeCall",
            "Bridge the call with another: each leg's far end hears the other's (call.bridged on both)",
            "BridgeRequest",
        ),
        Action(
            "transfer",
            "transfer",
            bridging.transfer,
            "TransferCall",
            "Dial a new leg and bridge it to the call once its far end (a scenario) answers",
            "TransferCallRequest",
        ),
    )
}

# Every call action of Telnyx's API (its /calls/{call_control_id}/actions/{name} paths): one without an entry in
# ACTIONS is answered 501 naming it, a name Telnyx does not have 404.
TELNYX_ACTIONS = frozenset(
    """ai_assistant_add_messages ai_assistant_join ai_assistant_start ai_assistant_stop answer bridge
    client_state_update conversation_relay_start conversation_relay_stop enqueue fork_start fork_stop gather
    gather_stop gather_using_ai gather_using_audio gather_using_speak hangup leave_queue playback_start
    playback_stop record_pause record_resume record_start record_stop refer reject send_dtmf send_sip_info
    siprec_start siprec_stop speak streaming_start streaming_stop suppression_start suppression_stop
    switch_supervisor_role transcription_start transcription_stop transfer""".split()
    # Newer than the reference spec: the official SDKs call it (telnyx-python 4.189: calls.actions.pay).
    + ["pay"]
)
