"""What each TeXML verb does on a call, as the Call Control command it resembles (pure).

A verb runs as that command runs when an app sends it: ``Say`` is ``speak``, ``Play`` is ``playback_start`` (or
``send_dtmf`` for its ``digits``), ``Gather`` is ``gather_using_speak``, ``gather_using_audio`` or ``gather``,
``Record`` is ``record_start``, ``<Connect><Stream>`` and ``<Start><Stream>`` are ``streaming_start``, ``<Stop>
<Stream>`` is ``streaming_stop``, ``Reject`` is ``reject``, ``Hangup`` is ``hangup``. The runner
(``emulator/texml_session.py``) sends the body built here through the command's own schema and handler, then
waits for the event that ends it (``Command.until``) before the next verb.

Also here: the form parameters of the requests Telnyx makes to the app (the document fetch, ``action`` URLs,
status callbacks), named as Telnyx documents them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emulator.texml.verbs import Dial, Gather, Pause, Play, Record, Reject, RejectReason, Say, Stream, StreamCodec

# TeXML's classic voices, as speak names them; any other voice (Polly.Joanna, Azure..., Telnyx...) passes as is.
VOICES = {"man": "male", "woman": "female", "alice": "female"}
# Telnyx's loop="0" is "until the call ends"; speak and playback_start say that as "infinity".
FOREVER = "infinity"
# TeXML's API version, as Telnyx's TeXML requests name it.
API_VERSION = "2010-04-01"
# A Gather's whole length: past anything a caller takes (TeXML has no such limit, Call Control needs one).
GATHER_LIMIT_MS = 3_600_000
# The cue of a <Pause> (and of the wait for <Play digits>' tones) on the call's media timeline: the runner waits
# for it, so a Pause lasts as long as the call's audio says, at any --speed (reactions.cue_due emits it back).
PAUSE_CUE = "texml.pause"
# send_dtmf's defaults, for how long <Play digits> takes: each key's tone and the gap after it; "w" waits 0.5 s.
DTMF_TONE_MS, DTMF_GAP_MS, DTMF_WAIT_MS = 250, 100, 500


@dataclass(frozen=True, slots=True)
class Command:
    """One Call Control command a verb sends, and the events that end it (None: the verb goes straight on)."""

    action: str
    body: dict[str, Any]
    until: frozenset[str] | None = None


SPEAK_ENDED = frozenset({"call.speak.ended"})
PLAYBACK_ENDED = frozenset({"call.playback.ended"})
GATHER_ENDED = frozenset({"call.gather.ended"})
RECORDING_SAVED = frozenset({"call.recording.saved"})
STREAM_ENDED = frozenset({"streaming.stopped", "streaming.failed"})
DTMF_SENT = frozenset({"call.dtmf.sent"})


def _loop(loop: int) -> int | str:
    return FOREVER if loop == 0 else loop


def say(verb: Say) -> Command:
    body: dict[str, Any] = {"payload": verb.text, "voice": VOICES.get(verb.voice, verb.voice), "loop": _loop(verb.loop)}
    if verb.language is not None:
        body["language"] = verb.language
    return Command("speak", body, SPEAK_ENDED)


def digits_ms(digits: str) -> int:
    """How long ``<Play digits>`` plays: what the runner waits before the next verb."""
    waits = digits.lower().count("w")
    return waits * DTMF_WAIT_MS + (len(digits) - waits) * (DTMF_TONE_MS + DTMF_GAP_MS)


def play(verb: Play) -> Command:
    if verb.digits is not None:  # keys played as tones instead of a file; "w" is a half-second wait
        return Command("send_dtmf", {"digits": verb.digits, "duration_millis": DTMF_TONE_MS}, None)
    if verb.media_storage:
        return Command("playback_start", {"media_name": verb.url, "loop": _loop(verb.loop)}, PLAYBACK_ENDED)
    return Command("playback_start", {"audio_url": verb.url, "loop": _loop(verb.loop)}, PLAYBACK_ENDED)


def gather(verb: Gather) -> list[Command | Pause]:
    """The prompts and the gather. A single ``Say`` or ``Play`` prompt is the gather's own, so a key pressed
    during it interrupts it (``gather_using_speak``, ``gather_using_audio``); several play in turn first."""
    # TeXML's timeout counts from the end of the prompt, before the first key and between keys; Call Control's
    # timeout_millis counts from the gather's start, prompt included, so it is set out of the way. One try:
    # TeXML's Gather does not repeat its prompt (the next verb, or the app's action, does that).
    digits: dict[str, Any] = {
        "minimum_digits": verb.num_digits or verb.min_digits,
        "maximum_digits": verb.num_digits or verb.max_digits,
        "initial_timeout_millis": verb.timeout * 1000,
        "inter_digit_timeout_millis": verb.timeout * 1000,
        "timeout_millis": GATHER_LIMIT_MS,
    }
    if verb.finish_on_key:
        digits["terminating_digit"] = verb.finish_on_key[0]
    if verb.valid_digits:
        digits["valid_digits"] = verb.valid_digits
    prompts = verb.children
    if len(prompts) == 1 and isinstance(prompts[0], Say):
        spoken = say(prompts[0]).body
        body = {**digits, "payload": spoken["payload"], "voice": spoken["voice"], "maximum_tries": 1}
        if "language" in spoken:
            body["language"] = spoken["language"]
        return [Command("gather_using_speak", body, GATHER_ENDED)]
    if len(prompts) == 1 and isinstance(prompts[0], Play) and prompts[0].url and not prompts[0].media_storage:
        body = {**digits, "audio_url": prompts[0].url, "maximum_tries": 1}
        return [Command("gather_using_audio", body, GATHER_ENDED)]
    steps: list[Command | Pause] = [
        prompt if isinstance(prompt, Pause) else say(prompt) if isinstance(prompt, Say) else play(prompt)
        for prompt in prompts
    ]
    return [*steps, Command("gather", digits, GATHER_ENDED)]


def record(verb: Record) -> Command:
    body: dict[str, Any] = {
        "format": verb.format.value,
        "channels": "dual" if verb.channels.value == "dual" else "single",
        "play_beep": verb.play_beep,
        "max_length": min(verb.max_length, 14400),
        "timeout_secs": verb.timeout,
    }
    if verb.trim is not None and verb.trim.value == "trim-silence":
        body["trim"] = "trim-silence"
    return Command("record_start", body, RECORDING_SAVED)


def stream_start(verb: Stream, *, wait: bool) -> Command:
    """``<Connect><Stream>`` (``wait``: the document goes on when the stream ends) or ``<Start><Stream>``."""
    body: dict[str, Any] = {
        "stream_url": verb.url,
        "stream_track": verb.track.value,
        "stream_codec": verb.codec.value if verb.codec is not StreamCodec.DEFAULT else "default",
        "stream_bidirectional_mode": verb.bidirectional_mode.value,
        "stream_bidirectional_codec": verb.bidirectional_codec.value,
        "stream_bidirectional_sampling_rate": verb.bidirectional_sampling_rate,
    }
    if verb.parameters:
        body["custom_parameters"] = [{"name": p.name, "value": p.value} for p in verb.parameters]
    return Command("streaming_start", body, STREAM_ENDED if wait else None)


def dial(verb: Dial, caller_id: str) -> Command:
    """``transfer`` to the first number: the call stays up, parked, when the bridge ends, and the document goes
    on. ``caller_id``: the number the new leg shows when ``callerId`` is not given (the called number)."""
    number = verb.numbers[0]
    body: dict[str, Any] = {
        "to": number.number + (f",{number.send_digits}" if number.send_digits else ""),
        "from": verb.caller_id or caller_id,
        "timeout_secs": max(5, min(verb.timeout, 600)),
        "time_limit_secs": verb.time_limit,
        "park_after_unbridge": "self",
    }
    return Command("transfer", body, None)


def reject(verb: Reject) -> Command:
    cause = "USER_BUSY" if verb.reason is RejectReason.BUSY else "CALL_REJECTED"
    return Command("reject", {"cause": cause}, None)


# -- the requests the app gets ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What every TeXML request says of the call."""

    call_sid: str
    account_sid: str
    from_: str
    to: str
    direction: str  # inbound, outbound-api
    connection_id: str


def call_params(facts: CallFacts, status: str) -> dict[str, str]:
    """The parameters sent with every request about the call: the document fetch and each callback."""
    return {
        "AccountSid": facts.account_sid,
        "CallSid": facts.call_sid,
        "CallSidLegacy": facts.call_sid,
        "ConnectionId": facts.connection_id,
        "From": facts.from_,
        "To": facts.to,
        "CallerId": facts.from_,
        "CallStatus": status,
        "Direction": facts.direction,
        "ApiVersion": API_VERSION,
    }


# How a call that was never answered ended, as TeXML's CallStatus says it, by its call.hangup's hangup_cause.
UNANSWERED = {"user_busy": "busy", "call_rejected": "busy", "timeout": "no-answer", "originator_cancel": "canceled"}


def final_status(answered: bool, hangup: Mapping[str, Any]) -> str:
    """The CallStatus of a call's last status callback: completed, or why it was never answered."""
    if answered:
        return "completed"
    return UNANSWERED.get(str(hangup.get("hangup_cause")), "failed")


def gather_params(digits: str) -> dict[str, str]:
    return {"Digits": digits}


def recording_params(payload: Mapping[str, Any], duration_s: float, status: str = "completed") -> dict[str, str]:
    """A recording's parameters (``Record``'s ``action`` and ``recordingStatusCallback``), from call.recording.saved."""
    urls = payload.get("recording_urls") or {}
    url = urls.get("mp3") or urls.get("wav") or ""
    return {
        "RecordingUrl": url,
        "RecordingSid": url.rsplit("/", 1)[-1].rsplit(".", 1)[0],  # the file's name is the recording's id
        "RecordingDuration": str(round(duration_s)),
        "RecordingChannels": "2" if payload.get("channels") == "dual" else "1",
        "RecordingStatus": status,
        "RecordingSource": "StartCallRecordingAPI",
    }


def recording_seconds(saved: Mapping[str, Any]) -> float:
    """How long a recording lasted, from its call.recording.saved (media time: the same at any --speed)."""
    try:
        started = datetime.fromisoformat(str(saved["recording_started_at"]))
        ended = datetime.fromisoformat(str(saved["recording_ended_at"]))
    except (KeyError, ValueError):
        return 0.0
    return max(0.0, (ended - started).total_seconds())


def stream_params(event: str, stream_id: str, name: str | None, timestamp: str, error: str | None) -> dict[str, str]:
    """A ``<Stream>``'s ``statusCallback``: stream-started, stream-stopped or stream-failed."""
    params = {"StreamEvent": event, "StreamSid": stream_id, "StreamName": name or stream_id, "Timestamp": timestamp}
    if error:
        params["ErrorMessage"] = error
    return params
