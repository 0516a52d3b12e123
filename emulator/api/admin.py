"""The control plane under ``/_emulator/``: things Telnyx does not have but a test needs — simulate an
incoming call, see calls, streams, the REST journal and delivered webhooks, seed ids, start over.

Every endpoint but health and public-key acts on the caller's namespace (its API key) only, so CI jobs
sharing one emulator cannot see or reset each other's calls. The contract is documented in
docs/control-plane.md and described by ``GET /openapi.json``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.api.filters import CALL_FILTERS, COMMAND_FILTERS, WEBHOOK_FILTERS, filtered
from emulator.api.queues import seat_json
from emulator.api.routes import call_resource, emulator_state, namespace_of, validated_body
from emulator.api.sessions import payment_json, sessions_json
from emulator.api.texml import start_incoming
from emulator.calls.actions.call import incoming_call
from emulator.calls.effects import StopMedia, StopStreams
from emulator.calls.models import AppAudioCounters, Call, StreamEndReason, StreamRecord
from emulator.calls.store import require_alive
from emulator.errors import ApiError, NotFound, Problem, ValidationFailed
from emulator.media.conversation import ConversationMeter
from emulator.media.recording_files import MEDIA_TYPES, URL_PREFIX
from emulator.media.recordings import TRACKS
from emulator.runtime import Runtime
from emulator.scenarios.loader import ScenarioError
from emulator.state import EmulatorState
from emulator.timestamps import iso_utc_of_monotonic
from emulator.timing import FRAME_MS

log = logging.getLogger(__name__)

# How long reset waits, beyond the connect timeout, for running streams to send stop and close.
RESET_GRACE = 5.0


def _data(data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse({"data": data}, status_code=status_code)


# -- JSON shapes -------------------------------------------------------------------------------


def stream_json(record: StreamRecord) -> dict[str, Any]:
    spec = record.spec
    return {
        "stream_id": spec.stream_id,
        "call_control_id": spec.call_control_id,
        "stream_url": spec.stream_url,
        "track": spec.track.value,
        "codec": spec.codec,
        "scenario": spec.scenario,
        "state": record.state.value,
        "end_reason": record.end_reason,
        "error": record.error,
        "frames_sent": record.frames_sent,
        "media_frames_sent": record.media_frames_sent,
        "frames_received": record.frames_received,
        "errors_sent": record.errors_sent,
        "close_code": record.close_code,
        "max_lateness_ms": round(record.max_lateness * 1000, 3),
        "ticks": record.ticks,
        "late_ticks": record.late_ticks,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "app_audio": app_audio_json(record.app_audio),
        "faults": dict(record.faults),
    }


def app_audio_json(counters: AppAudioCounters) -> dict[str, Any]:
    """What became of the audio the app sent: chunk counts, and durations both in ms (rounded to the
    microsecond, for reading) and in samples at the app's rate (exact: accepted = played + dropped + queued)."""
    rate = counters.sample_rate

    def amount(chunks: int, samples: int) -> dict[str, Any]:
        ms = round(samples * 1000 / rate, 3) if rate else 0.0
        return {"chunks": chunks, "ms": ms, "samples": samples}

    c = counters
    return {
        "sample_rate": rate,
        "accepted": amount(c.accepted_chunks, c.accepted_samples),
        "played": amount(c.played_chunks, c.played_samples),
        "dropped": amount(c.dropped_chunks, c.dropped_samples),
        "unplayed": amount(c.unplayed_chunks, c.unplayed_samples),
        "queued": amount(c.queued_chunks, c.queued_samples),
    }


def _target(target: tuple[str, int] | None) -> str | None:
    return f"udp:{target[0]}:{target[1]}" if target is not None else None


def call_json(call: Call) -> dict[str, Any]:
    # The store keeps monotonic seconds (for the command_id window); shown as wall-clock UTC, like the
    # journal and the webhook log, so the three line up.
    return {
        **call_resource(call),
        "direction": call.direction.value,
        "state": call.state.value,
        "from": call.from_,
        "to": call.to,
        "connection_id": call.connection_id,
        "scenario": call.scenario,
        "webhook_url": call.webhook_url,
        "noise_suppression": call.noise_suppression,
        "recordings": list(call.recordings),
        **sessions_json(call),  # SIP INFO, SIPREC, supervisor role, AI assistant, relay, AI gather
        # Two legs: the call it is bridged to now, what it does when that bridge ends, transfer's ringing leg.
        "bridged_to": call.bridged_to.call_control_id if call.bridged_to is not None else None,
        "unbridge": call.unbridge.value,
        "transferring": call.transferring.call_control_id if call.transferring is not None else None,
        "bridges": call.bridges,
        "fork": {"rx": _target(call.fork.rx), "tx": _target(call.fork.tx)} if call.fork is not None else None,
        "payment": payment_json(call),
        "metrics": call.meter.as_json() if call.meter is not None else None,
        "hangup_cause": call.hangup_cause,  # as its call.hangup said; null while it lives
        "hangup_source": call.hangup_source,
        "traffic": call.traffic.as_json(),  # the app's commands refused, its webhooks that failed
        "texml": call.texml.as_json() if call.texml is not None else None,  # a TeXML call's document
        "queue": seat_json(call.queued),  # the queue it waits in and its place there; null in none
        "history": [{"at": iso_utc_of_monotonic(at), "state": state.value} for at, state in call.history],
        "streams": [stream_json(record) for record in call.streams.values()],
    }


# -- calls -------------------------------------------------------------------------------------


async def create_inbound_call(request: Request) -> Response:
    """Someone calls the app: a parked incoming call and a ``call.initiated`` webhook."""
    state = emulator_state(request)
    namespace = namespace_of(request)
    body = await validated_body(request, "inbound_call")
    scenario = _scenario(state, body["to"], body.get("scenario"))
    call, outcome = incoming_call(state.context(namespace), namespace.store, body, scenario)
    texml = start_incoming(request, namespace, call, body)  # a TeXML call: its document, not call.initiated
    state.runtime.apply(outcome.effects)
    if texml is not None:
        texml.start()
    return _data(call_json(call), status_code=201)


def _scenario(state: EmulatorState, to: str, requested: str | None) -> str | None:
    try:
        return state.scenario_for(to, requested)
    except ScenarioError as exc:
        raise ValidationFailed([Problem("10015", "Unknown scenario", str(exc), "/scenario")]) from None


async def set_call_scenario(request: Request) -> Response:
    """Choose what the caller of an existing call says, until the call is answered.

    The caller belongs to the call and starts at the answer, so a change that could no longer take effect
    is refused rather than answered 200: on an ended call (422 90018, as any command there), on a call whose
    media has started, and on one with a stream requested (409).
    """
    state = emulator_state(request)
    call = own_call(request)
    body = await validated_body(request, "call_scenario")
    scenario = _scenario(state, call.to, body["scenario"])  # a bad name is a 422 whatever the call's state
    require_alive(call)
    _require_no_stream(call)
    call.scenario = scenario
    return _data(call_json(call))


def _require_no_stream(call: Call) -> None:
    if call.has_media:
        detail = (
            f"The caller has been playing scenario {call.scenario or 'the default'!r} since the call was "
            "answered: a call's scenario is set before the answer (or when the call is created)."
        )
        raise ApiError(409, [Problem("10015", "Call is answered", detail, "/scenario")])
    streams = call.active_streams()  # running, connecting, or requested on dial and waiting for the answer
    if not streams:
        return
    record = streams[0]
    plays = f"plays scenario {record.spec.scenario!r}"
    if record is call.pending_stream:
        plays = f"will play scenario {record.spec.scenario!r} once the call is answered"
    detail = (
        f"Stream {record.spec.stream_id} {plays}: the stream was opened for that scenario. "
        "Set the scenario before the dial asks for a stream, or stop the stream (streaming_stop) first."
    )
    raise ApiError(409, [Problem("10015", "Call has a stream", detail, "/scenario")])


def own_call(request: Request) -> Call:
    call = namespace_of(request).store.calls.get(request.path_params["call_control_id"])
    if call is None:
        raise NotFound("No call with this call_control_id.")
    return call


async def get_call(request: Request) -> Response:
    return _data(call_json(own_call(request)))


async def get_call_metrics(request: Request) -> Response:
    """The call's conversation metrics (docs/metrics.md), so far or final; all zero before its media starts."""
    return _data(metrics_json(own_call(request)))


def metrics_json(call: Call) -> dict[str, Any]:
    meter = call.meter or ConversationMeter()
    return {"call_control_id": call.call_control_id, "is_alive": call.is_alive, **meter.as_json()}


async def list_calls(request: Request) -> Response:
    """The namespace's calls, oldest first; ``?is_alive=true`` the live ones only. ``view=brief``: a few fields
    per call, cheap to build while streams run (``telnyx-emulator load`` polls it four times a second)."""
    view = request.query_params.get("view", "full")
    if view not in ("full", "brief"):
        raise ApiError(400, [Problem("10015", "Invalid view", f"view: expected full or brief, got {view!r}.", None)])
    calls = filtered(request, namespace_of(request).store.calls.values(), CALL_FILTERS, options=("view",))
    return _data([call_json(call) if view == "full" else brief_json(call) for call in calls])


def brief_json(call: Call) -> dict[str, Any]:
    history = call.history
    return {
        "call_control_id": call.call_control_id,
        "direction": call.direction.value,
        "state": call.state.value,
        "from": call.from_,
        "to": call.to,
        "scenario": call.scenario,
        "created_at": iso_utc_of_monotonic(history[0][0]) if history else None,
        "ended_at": iso_utc_of_monotonic(history[-1][0]) if not call.is_alive and history else None,
        "media_ms": call.meter.ticks * FRAME_MS if call.meter is not None else 0,
    }


async def calls(request: Request) -> Response:
    # One route for both methods, so a 405 on this path lists both in its Allow header.
    return await (create_inbound_call(request) if request.method == "POST" else list_calls(request))


# -- streams -----------------------------------------------------------------------------------


def namespace_streams(request: Request) -> list[StreamRecord]:
    """Every stream of the caller's calls, in the order the calls and their streams were made."""
    return [record for call in namespace_of(request).store.calls.values() for record in call.streams.values()]


def find_stream(request: Request) -> StreamRecord:
    """The stream named by the ``stream_id`` path parameter, if it belongs to the caller's namespace."""
    stream_id = str(request.path_params["stream_id"]).lower()
    for record in namespace_streams(request):
        if record.spec.stream_id == stream_id:
            return record
    raise NotFound("No stream with this stream_id.")


async def list_streams(request: Request) -> Response:
    return _data([stream_json(record) for record in namespace_streams(request)])


async def get_stream(request: Request) -> Response:
    return _data(stream_json(find_stream(request)))


async def get_recording(request: Request) -> Response:
    """One track of a stream's recording as 16-bit mono WAV: inbound, outbound or app."""
    record = find_stream(request)
    track = request.path_params["track"]
    if track not in TRACKS:
        raise NotFound(f"No recording track {track!r}; use one of: {', '.join(TRACKS)}.")
    recording = emulator_state(request).runtime.recordings.get(record.spec.stream_id)
    if recording is None:
        raise NotFound("This stream's recording is no longer kept (only the most recent streams' are).")
    return Response(recording.wav(track), media_type="audio/wav")


async def get_call_recording(request: Request) -> Response:
    """A call recording's file (record_start), as call.recording.saved links it; no API key needed."""
    name = request.path_params["name"]
    data = emulator_state(request).runtime.call_recordings.get(name)
    if data is None:
        raise NotFound("No such recording, or it is no longer kept (only the most recent are).")
    return Response(data, media_type=MEDIA_TYPES[name.rsplit(".", 1)[-1]])


# -- what happened: webhooks and the REST journal ----------------------------------------------


async def webhooks(request: Request) -> Response:
    attempts = filtered(request, namespace_of(request).webhook_attempts, WEBHOOK_FILTERS)
    return _data([attempt.as_json() for attempt in attempts])


async def commands_journal(request: Request) -> Response:
    return _data([entry.to_json() for entry in filtered(request, namespace_of(request).journal, COMMAND_FILTERS)])


# -- the namespace: start over, seed ids -------------------------------------------------------


async def reset(request: Request) -> Response:
    """Forget the caller's calls, commands, journal and webhook log; running streams stop first."""
    state = emulator_state(request)
    namespace = namespace_of(request)
    forgotten = len(namespace.store.calls)
    talking = [call for call in namespace.store.calls.values() if call.has_media and call.is_alive]
    for call in namespace.store.calls.values():
        if call.texml is not None:  # its document stops with it (a reset sends no call.hangup)
            call.texml.stop()
    running = namespace.reset(state.clock.monotonic())
    state.runtime.apply([StopMedia(call) for call in talking])  # their callers stop with them
    if running:
        state.runtime.apply([StopStreams(tuple(running), StreamEndReason.RESET)])
        await _streams_ended(state.runtime, running, state.settings.connect_timeout + RESET_GRACE)
    return _data({"calls": forgotten, "streams_stopped": len(running), "seed": namespace.seed})


async def _streams_ended(runtime: Runtime, records: list[StreamRecord], timeout: float) -> None:
    # The runtime drops a stream's session once it has sent stop and closed; it offers no per-stream
    # signal, so poll for that within a bound (a stream stops at its next 20 ms tick at the latest).
    stream_ids = {record.spec.stream_id for record in records}
    try:
        async with asyncio.timeout(timeout):
            while stream_ids & runtime.sessions.keys():
                await asyncio.sleep(0.005)
    except TimeoutError:
        log.warning("reset: %d stream(s) did not stop within %g s", len(stream_ids & runtime.sessions.keys()), timeout)


async def seed(request: Request) -> Response:
    """Draw the caller's ids from this seed from now on (``null``: random ids again)."""
    namespace = namespace_of(request)
    body = await validated_body(request, "seed")
    if namespace.store.calls:
        detail = "Seed an empty namespace, so no id can repeat: POST /_emulator/reset first."
        raise ApiError(409, [Problem("10015", "Calls exist", detail, "/seed")])
    value = body["seed"]
    namespace.reseed(int(value) if value is not None else None)  # 7.0 is the integer 7, as everywhere
    return _data({"seed": namespace.seed})


# -- the emulator ------------------------------------------------------------------------------


async def public_key(request: Request) -> Response:
    return _data({"public_key": emulator_state(request).signing_key.public_key_b64()})


async def health(request: Request) -> Response:
    return _data({"status": "ok"})


def call_routes() -> list[Route]:
    return [
        Route("/_emulator/calls", calls, methods=["GET", "POST"]),
        Route("/_emulator/calls/{call_control_id}", get_call, methods=["GET"]),
        Route("/_emulator/calls/{call_control_id}/scenario", set_call_scenario, methods=["PUT"]),
        Route("/_emulator/calls/{call_control_id}/metrics", get_call_metrics, methods=["GET"]),
    ]


def stream_routes() -> list[Route]:
    return [
        Route("/_emulator/streams", list_streams, methods=["GET"]),
        Route("/_emulator/streams/{stream_id}", get_stream, methods=["GET"]),
        Route("/_emulator/streams/{stream_id}/recording/{track}.wav", get_recording, methods=["GET"]),
        Route(URL_PREFIX + "{name}", get_call_recording, methods=["GET"]),
    ]


def admin_routes() -> list[Route]:
    return [
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/_emulator/public-key", public_key, methods=["GET"]),
        *call_routes(),
        *stream_routes(),
        Route("/_emulator/webhooks", webhooks, methods=["GET"]),
        Route("/_emulator/commands", commands_journal, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/seed", seed, methods=["POST"]),
    ]
