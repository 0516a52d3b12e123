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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, assert_never

from emulator.call_media import CallMediaControl
from emulator.calls import reactions
from emulator.calls.actions.bridging import leg_answers
from emulator.calls.actions.call import callee_hangs_up
from emulator.calls.actions.context import CommandContext
from emulator.calls.effects import (
    Connect,
    Cue,
    Disconnect,
    Effect,
    Emit,
    PauseRecording,
    PlayClip,
    Ring,
    StartFork,
    StartGather,
    StartMedia,
    StartRecording,
    StartRefer,
    StartStream,
    StartTimer,
    StopClips,
    StopFork,
    StopGather,
    StopMedia,
    StopRecording,
    StopStreams,
)
from emulator.calls.ids import IdFactory
from emulator.calls.journal import redact_url
from emulator.calls.models import Call, StreamEndReason, StreamRecord
from emulator.clock import Clock
from emulator.faults.rules import FaultBook
from emulator.media.clip_player import ClipPlayer
from emulator.media.library import MediaLibrary
from emulator.media.recording_files import RecordingFiles
from emulator.media.recordings import RecordingStore
from emulator.media.session import StreamSession
from emulator.media.stream_watch import StreamLimits
from emulator.media.workers import MediaWorkers
from emulator.tasks import TaskFailure, Tasks
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
        workers: MediaWorkers | None = None,
    ) -> None:
        self.workers = workers  # --media-workers: the streams' WebSockets live in these processes
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
        self._rings: dict[str, asyncio.Task[None]] = {}  # dialed calls still ringing, by call_control_id
        self.clips = ClipPlayer(lambda coro, name: self.spawn(coro, name), media_dir=media_dir)
        self.call_recordings = RecordingFiles(directory=recordings.directory if recordings else None)
        self.recordings = recordings or RecordingStore()
        self.media = CallMediaControl(
            library,
            clock,
            call_codec=call_codec,
            spawn=self.spawn,
            apply=self.apply,
            context=context,
            clips=self.clips,
            files=self.call_recordings,
        )
        self.runners = self.media.runners  # each answered call's media (CallRunner), by the Call's identity
        # The fault rules of a call's namespace (docs/faults.md), for the streams: set by the app, which knows them.
        self.faults_for: Callable[[Call], FaultBook | None] = lambda call: None
        # Told when a stream starts and when it ends (the namespace's event feed): set by the app, as faults_for.
        self.on_stream: Callable[[StreamRecord], None] = lambda record: None

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
        self.media.stop_all()
        for session in list(self.sessions.values()):
            session.request_stop(StreamEndReason.SHUTDOWN)
        await self.tasks.aclose(grace)
        if self.workers is not None:  # after the streams: their stop frames and closes went through them
            await self.workers.aclose(grace)
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
                    if event_type == "call.hangup" and (ringing := self._rings.pop(call.call_control_id, None)):
                        ringing.cancel()  # hung up before the far end answered: its ring timer is moot
                case Ring():
                    key = effect.call.call_control_id
                    self._rings[key] = self.spawn(self._ring(effect), name=f"ring-{key}")
                case StartMedia(call, awaiting):
                    self.media.start(call, awaiting)
                case StopMedia(call):
                    self.media.stop(call)
                case PlayClip(call, request):
                    self.media.play_clip(call, request)
                case StopClips():
                    self.media.stop_clips(effect)
                case StartRecording(call, request):
                    self.media.start_recording(call, request)
                case StopRecording(call, recording_id):
                    self.media.stop_recording(call, recording_id)
                case PauseRecording(call, recording_id, paused):
                    self.media.pause_recording(call, recording_id, paused)
                case StartGather(call, request):
                    self.media.start_gather(call, request)
                case StopGather(call):
                    self.media.stop_gather(call)
                case StartTimer(call, after_ms, cue):
                    self.media.start_timer(call, after_ms, cue)
                case StartFork(call, fork):
                    self.media.start_fork(call, fork)
                case StopFork(call, key):
                    self.media.stop_fork(call, key)
                case StartRefer(call):
                    answer = self.library.scenarios[call.scenario or self.library.default].refer
                    what = "call.refer.completed" if answer.accept else "call.refer.failed"
                    self.media.start_timer(call, answer.after_ms, Cue(what, str(answer.status)))
                case Connect(speaker, listener):
                    self.media.connect(speaker, listener)
                case Disconnect(speaker, listener):
                    self.media.disconnect(speaker, listener)
                case _:
                    assert_never(effect)

    def emit(self, call: Call, event_type: str, payload: dict[str, Any]) -> None:
        if call.texml is not None:  # a TeXML call: its events drive its document (emulator/texml_session.py)
            call.texml.on_event(event_type, payload)
            return
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
            await self.sleep(ring.timeout_secs)
        else:
            await self.sleep(callee.ring_ms / 1000)
        self._rings.pop(call.call_control_id, None)
        if answers:
            outcome = leg_answers(self.context(), call, callee)
        else:
            cause = "timeout" if callee.outcome == "answer" else CALLEE_CAUSES[callee.outcome]
            outcome = callee_hangs_up(self.context(), call, cause)
        self.apply(outcome.effects)

    async def sleep(self, call_seconds: float) -> None:
        """Wait ``call_seconds`` of the call's time: shorter at --speed 2, no time at --speed 0."""
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
            faults=self.faults_for(record.call),  # once per stream: its namespace's media faults
            workers=self.workers if self.workers is not None and self.workers.takes(len(self.sessions)) else None,
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

    # -- StreamObserver ----------------------------------------------------------------------

    def stream_connected(self, session: StreamSession) -> None:
        self.media.stream_connected(session)
        self.on_stream(session.record)
        self.apply(reactions.stream_started(session.record).effects)

    def stream_ended(self, session: StreamSession) -> None:
        record = session.record
        self.sessions.pop(record.spec.stream_id, None)
        self.media.stream_ended(session)
        self.on_stream(record)
        directory = self.recordings.directory
        if directory is not None:
            recording = session.recording
            self.spawn(_save(recording.save, directory), name=f"save-recording-{recording.stream_id}")
        self.apply(reactions.stream_ended(record).effects)


async def _save(save: Callable[[Path], list[Path]], directory: Path) -> None:
    paths = await asyncio.to_thread(save, directory)
    log.info("recordings saved: %s", ", ".join(str(p) for p in paths))
