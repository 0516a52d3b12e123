"""Runtime: turns effects into tasks, through the one owner of background work (``emulator/tasks.py``).

Every task goes through ``spawn``, which logs and records an unexpected exception instead of letting
asyncio drop it; ``wait_idle`` lets tests await quiescence instead of sleeping. The runtime also observes
streams and each call's media; what happens there is decided by pure functions (``calls/reactions.py``)
whose effects it carries out, so every webhook leaves through ``apply``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, assert_never

from emulator.calls import reactions
from emulator.calls.actions.call import callee_answers, callee_hangs_up
from emulator.calls.actions.context import CommandContext
from emulator.calls.effects import (
    ClipRequest,
    Cue,
    Effect,
    Emit,
    GatherRequest,
    PauseRecording,
    PlayClip,
    RecordingRequest,
    Ring,
    StartGather,
    StartMedia,
    StartRecording,
    StartStream,
    StartTimer,
    StopClips,
    StopGather,
    StopMedia,
    StopRecording,
    StopStreams,
)
from emulator.calls.ids import IdFactory
from emulator.calls.journal import redact_url
from emulator.calls.models import Call, StreamEndReason, StreamRecord
from emulator.clock import Clock
from emulator.media.call_audio import ClipEvent
from emulator.media.call_recorder import CallRecording
from emulator.media.call_runner import CallRunner
from emulator.media.clip_player import ClipPlayer
from emulator.media.engine import CallMedia
from emulator.media.gather import DigitGather
from emulator.media.library import MediaLibrary
from emulator.media.recording_files import URL_PREFIX, RecordingFiles
from emulator.media.recordings import RecordingStore
from emulator.media.session import StreamLimits, StreamSession
from emulator.scenarios.cursor import End
from emulator.tasks import TaskFailure, Tasks
from emulator.timestamps import utc_now
from emulator.timing import FRAME_MS
from emulator.webhooks.sender import WebhookSender, WebhookTarget, build_event

log = logging.getLogger(__name__)

# What a dialed callee's outcome ends the call with (hangup_cause).
CALLEE_CAUSES = {"busy": "user_busy", "reject": "call_rejected", "no_answer": "timeout"}


@dataclass(frozen=True, slots=True)
class WebhookDefaults:
    """The emulated Call Control App's webhook URLs."""

    url: str | None = None
    failover_url: str | None = None


class Runtime:
    def __init__(
        self,
        library: MediaLibrary,
        clock: Clock,
        ids: IdFactory,
        context: Callable[[], CommandContext],
        *,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        stream_limits: StreamLimits | None = None,
        webhook_defaults: WebhookDefaults = WebhookDefaults(),
        recordings: RecordingStore | None = None,
        call_codec: str = "PCMU",
        media_dir: Path | None = None,
    ) -> None:
        self.library = library
        self.call_codec = call_codec  # the codec, and so the rate, of every call's media
        self.clock = clock
        self.ids = ids
        self.context = context
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.stream_limits = stream_limits or StreamLimits()
        self.webhook_defaults = webhook_defaults
        self.tasks = Tasks()
        self.spawn = self.tasks.spawn  # the one way background work starts
        self.webhooks: WebhookSender | None = None  # attached by the app once its HTTP client exists
        self.sessions: dict[str, StreamSession] = {}
        # Each answered call's media, by the Call object's identity (ids repeat across namespaces).
        self.runners: dict[int, CallRunner] = {}
        # Streams open before their call was answered (dial with stream_establish_before_call_originate).
        self._waiting: dict[int, list[StreamSession]] = {}
        self.clips = ClipPlayer(lambda coro, name: self.spawn(coro, name), media_dir=media_dir)
        self.call_recordings = RecordingFiles(directory=recordings.directory if recordings else None)
        self.recordings = recordings or RecordingStore()

    # -- tasks -------------------------------------------------------------------------------

    @property
    def failures(self) -> list[TaskFailure]:
        return self.tasks.failures

    @property
    def running(self) -> int:
        return self.tasks.running

    async def wait_idle(self) -> None:
        """Until no stream, ring timer or webhook delivery is left running (a call's media, which lasts as
        long as the call, does not count)."""
        while True:
            await self.tasks.wait_idle()
            if self.webhooks is not None:
                await self.webhooks.wait_idle()
            if self.tasks.is_idle:
                return

    async def aclose(self, grace: float = 5.0) -> None:
        """Stop every stream with a ``stop`` frame, give them ``grace`` seconds, then cancel."""
        for runner in list(self.runners.values()):
            runner.stop()
        for session in list(self.sessions.values()):
            session.request_stop(StreamEndReason.SHUTDOWN)
        await self.tasks.aclose(grace)
        if self.webhooks is not None:
            await self.webhooks.aclose(grace)

    # -- effects -----------------------------------------------------------------------------

    def apply(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            match effect:
                case StartStream(record):
                    self._start_stream(record)
                case StopStreams(records, reason):
                    for record in records:
                        session = self.sessions.get(record.spec.stream_id)
                        if session is not None:
                            session.request_stop(reason)
                case Emit(call, event_type, payload):
                    self.emit(call, event_type, payload)
                case Ring():
                    self.spawn(self._ring(effect), name=f"ring-{effect.call.call_control_id}")
                case StartMedia(call, awaiting):
                    self._start_media(call, awaiting)
                case StopMedia(call):
                    runner = self._runner_of(call)
                    if runner is not None:
                        runner.stop()
                case PlayClip(call, request):
                    self._play_clip(call, request)
                case StopClips():
                    self._stop_clips(effect)
                case StartRecording(call, request):
                    self._start_recording(call, request)
                case StopRecording(call, recording_id):
                    runner = self._runner_of(call)
                    if runner is not None:
                        self.recordings_saved(runner, runner.engine.stop_recording(recording_id))
                case StartGather(call, request):
                    self._start_gather(call, request)
                case StopGather(call):
                    runner = self._runner_of(call)
                    if runner is not None:
                        self._stop_gather(runner)
                case StartTimer(call, after_ms, cue):
                    runner = self._runner_of(call)
                    if runner is not None:
                        runner.engine.add_timer(after_ms, cue)
                        runner.poke()
                case PauseRecording(call, recording_id, paused):
                    runner = self._runner_of(call)
                    recording = runner.engine.recordings.get(recording_id) if runner is not None else None
                    if recording is not None:
                        recording.paused = paused
                case _:
                    assert_never(effect)

    def emit(self, call: Call, event_type: str, payload: dict[str, Any]) -> None:
        if self.webhooks is None:
            return
        event = build_event(event_type, payload, event_id=self.ids.event_id(), occurred_at=datetime.now(UTC))
        url = call.webhook_url or self.webhook_defaults.url
        target = WebhookTarget(url, self.webhook_defaults.failover_url) if url else None
        self.webhooks.send(call.call_control_id, target, event, owner=call)

    async def _ring(self, ring: Ring) -> None:
        call, callee = ring.call, ring.callee
        # Nobody picks up within dial's timeout_secs: the call ends with timeout.
        answers = callee.outcome == "answer" and callee.ring_ms <= ring.timeout_secs * 1000
        if callee.outcome == "no_answer" or (callee.outcome == "answer" and not answers):
            await self._sleep(ring.timeout_secs)
        else:
            await self._sleep(callee.ring_ms / 1000)
        if answers:
            outcome = callee_answers(self.context(), call, callee)
        else:
            cause = "timeout" if callee.outcome == "answer" else CALLEE_CAUSES[callee.outcome]
            outcome = callee_hangs_up(self.context(), call, cause)
        self.apply(outcome.effects)

    async def _sleep(self, call_seconds: float) -> None:
        now = self.clock.monotonic()
        await asyncio.sleep(max(0.0, self.clock.media_deadline(now, call_seconds) - now))

    def _start_stream(self, record: StreamRecord) -> None:
        spec = record.spec
        session = StreamSession(
            record,
            self.library.media(spec.scenario, spec.codec),
            self.library.media(spec.scenario, self.call_codec),
            self.clock,
            self,
            ssl_context=self.ssl_context,
            connect_timeout=self.connect_timeout,
            limits=self.stream_limits,
        )
        self.sessions[spec.stream_id] = session
        self.recordings.add(session.recording)
        log.info(
            "stream %s: call %s -> %s (%s, %s, scenario %s)",
            spec.stream_id,
            spec.call_control_id,
            redact_url(spec.stream_url),
            spec.track,
            spec.codec,
            spec.scenario,
        )
        self.spawn(session.run(), name=f"stream-{spec.stream_id}")

    # -- call media --------------------------------------------------------------------------

    def _start_media(self, call: Call, awaiting: tuple[str, ...]) -> None:
        scenario = call.scenario or self.library.default
        engine = CallMedia(self.library.media(scenario, self.call_codec), at_end=self.library.at_end(scenario))
        runner = CallRunner(call, engine, self.clock, self, awaiting=awaiting)
        self.runners[id(call)] = runner
        for session in self._waiting.pop(id(call), []):
            self._attach(runner, session)
        self.spawn(self._run_media(runner), name=f"media-{call.call_control_id}", lasting=True)

    async def _run_media(self, runner: CallRunner) -> None:
        try:
            await runner.run()
        finally:
            if self.runners.get(id(runner.call)) is runner:
                del self.runners[id(runner.call)]

    def _runner_of(self, call: Call) -> CallRunner | None:
        runner = self.runners.get(id(call))
        return runner if runner is not None and runner.call is call else None

    def _attach(self, runner: CallRunner, session: StreamSession) -> None:
        runner.engine.add_app_audio(session.stream_id, session.app_audio)
        runner.attach(session)

    # -- StreamObserver ----------------------------------------------------------------------

    def stream_connected(self, session: StreamSession) -> None:
        record = session.record
        call = record.call
        runner = self._runner_of(call)
        if runner is not None:
            self._attach(runner, session)
        elif call.is_alive:
            self._waiting.setdefault(id(call), []).append(session)
        self.apply(reactions.stream_started(record).effects)

    def stream_ended(self, session: StreamSession) -> None:
        record = session.record
        call = record.call
        self.sessions.pop(record.spec.stream_id, None)
        runner = self._runner_of(call)
        if runner is not None:
            runner.detach(record.spec.stream_id)
        waiting = self._waiting.get(id(call))
        if waiting is not None and session in waiting:
            waiting.remove(session)
            if not waiting:
                del self._waiting[id(call)]
        directory = self.recordings.directory
        if directory is not None:
            recording = session.recording
            self.spawn(_save(recording.save, directory), name=f"save-recording-{recording.stream_id}")
        self.apply(reactions.stream_ended(record).effects)

    def _play_clip(self, call: Call, request: ClipRequest) -> None:
        runner = self._runner_of(call)
        if runner is None:  # the call ended between the command and now
            return
        engine = runner.engine
        self.clips.play(engine.call_audio, engine.sample_rate, request, lambda events: self.clip_events(runner, events))
        runner.poke()

    def _start_recording(self, call: Call, request: RecordingRequest) -> None:
        runner = self._runner_of(call)
        if runner is None:
            return
        engine = runner.engine
        max_ticks = request.max_length * 1000 // FRAME_MS
        recording = CallRecording(
            request.recording_id, request.format, request.channels, request.track, max_ticks, request.started_at
        )
        recording.file_name, recording.base_url = request.file_name, request.base_url
        engine.start_recording(recording)
        if request.play_beep:
            beep = ClipRequest(f"beep-{request.recording_id}", "beep", overlay=True)
            self.clips.play(engine.call_audio, engine.sample_rate, beep, lambda events: None)
        runner.poke()

    def _start_gather(self, call: Call, request: GatherRequest) -> None:
        runner = self._runner_of(call)
        if runner is None:
            return
        engine, r = runner.engine, request
        prompt = r.prompt.key if r.prompt is not None else None
        previous = engine.start_gather(DigitGather(r.key, r.rules, engine.index * FRAME_MS, prompt))
        if previous is not None:
            self.gather_ended(runner, *previous)
        if r.prompt is not None:
            self.clips.play(
                engine.call_audio, engine.sample_rate, r.prompt, lambda events: self.clip_events(runner, events)
            )
        runner.poke()

    def _stop_gather(self, runner: CallRunner) -> None:
        """gather_stop: the gather ends cancelled, and its prompt stops if it still plays."""
        engine = runner.engine
        prompt = engine.gather.prompt if engine.gather is not None else None
        ended = engine.stop_gather("cancelled")
        if prompt is not None:
            self.clip_events(runner, engine.call_audio.stop(key=prompt))
        if ended is not None:
            self.gather_ended(runner, *ended)

    def gather_ended(self, runner: CallRunner, status: str, digits: str) -> None:
        assert isinstance(runner.call, Call)
        self.apply(reactions.gather_ended(runner.call, status, digits).effects)

    def recordings_saved(self, runner: CallRunner, recordings: Sequence[CallRecording]) -> None:
        for recording in recordings:
            recording.ended_at = utc_now()
            self.spawn(self._save(runner, recording), name=f"save-{recording.recording_id}")

    async def _save(self, runner: CallRunner, recording: CallRecording) -> None:
        name = await self.call_recordings.save(recording, runner.engine.sample_rate)
        assert isinstance(runner.call, Call)
        urls = {recording.format: f"{recording.base_url}{URL_PREFIX}{name}"}
        saved = reactions.recording_saved(
            runner.call, recording.recording_id, recording.channels, recording.started_at, recording.ended_at, urls
        )
        self.apply(saved.effects)

    def _stop_clips(self, stop: StopClips) -> None:
        runner = self._runner_of(stop.call)
        if runner is not None:
            self.clip_events(runner, runner.engine.call_audio.stop(stop.which, stop.kinds, overlay=stop.overlay))

    # -- CallMediaObserver -------------------------------------------------------------------

    def call_dtmf(self, runner: CallRunner, digit: str) -> None:
        assert isinstance(runner.call, Call)
        self.apply(reactions.dtmf_heard(runner.call, digit).effects)

    def clip_events(self, runner: CallRunner, events: Sequence[ClipEvent]) -> None:
        assert isinstance(runner.call, Call)
        for event in events:
            clip = event.clip
            self.apply(reactions.clip_event(runner.call, event.what, clip.kind, event.status, clip.details).effects)

    def cue_due(self, runner: CallRunner, cue: object) -> None:
        assert isinstance(runner.call, Call) and isinstance(cue, Cue)
        self.apply(reactions.cue_due(self.context(), runner.call, cue).effects)

    def caller_said(self, runner: CallRunner, text: str, is_final: bool) -> None:
        assert isinstance(runner.call, Call)
        self.apply(reactions.caller_said(runner.call, text, is_final).effects)

    def caller_done(self, runner: CallRunner, end: End) -> None:
        assert isinstance(runner.call, Call)
        self.apply(reactions.caller_done(self.context(), runner.call, end).effects)


async def _save(save: Callable[[Path], list[Path]], directory: Path) -> None:
    paths = await asyncio.to_thread(save, directory)
    log.info("recordings saved: %s", ", ".join(str(p) for p in paths))
