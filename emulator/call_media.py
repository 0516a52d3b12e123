"""CallMediaControl: every answered call's media, and the effects that act on it (I/O side).

One ``CallRunner`` per answered call paces its engine (``media/engine.py``); this class starts and stops them,
attaches the call's streams, carries out the effects that act on a call's audio (clips, recordings, gathers,
timers) and hears what each call's media reports (``CallMediaObserver``). What a report means for the call
(which webhooks, whether the call ends) is decided by ``calls/reactions.py``; the outcome goes back through
the runtime's ``apply``, so every webhook still leaves through one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from emulator.calls import reactions
from emulator.calls.actions.context import CommandContext
from emulator.calls.effects import ClipRequest, Cue, Effect, GatherRequest, RecordingRequest, StopClips
from emulator.calls.models import Call, Fork
from emulator.clock import Clock
from emulator.media import bridge
from emulator.media.bridge import leg_key
from emulator.media.call_audio import ClipEvent
from emulator.media.call_recorder import CallRecording
from emulator.media.call_runner import CallRunner
from emulator.media.clip_player import ClipPlayer
from emulator.media.engine import CallMedia
from emulator.media.fork_session import ForkSession
from emulator.media.gather import DigitGather
from emulator.media.library import MediaLibrary
from emulator.media.recording_files import URL_PREFIX, RecordingFiles
from emulator.media.session import StreamSession
from emulator.scenarios.cursor import End
from emulator.scenarios.steps import AudioStep
from emulator.timestamps import utc_now
from emulator.timing import FRAME_MS

log = logging.getLogger(__name__)

Spawn = Callable[..., object]


class CallMediaControl:
    def __init__(
        self,
        library: MediaLibrary,
        clock: Clock,
        *,
        call_codec: str,
        spawn: Spawn,
        apply: Callable[[Iterable[Effect]], None],
        context: Callable[[], CommandContext],
        clips: ClipPlayer,
        files: RecordingFiles,
    ) -> None:
        self.library = library
        self.clock = clock
        self.call_codec = call_codec  # the codec, and so the rate, of every call's media
        self.spawn = spawn
        self.apply = apply
        self.context = context
        self.clips = clips
        self.files = files
        # Each answered call's media, by the Call object's identity (ids repeat across namespaces).
        self.runners: dict[int, CallRunner] = {}
        # Streams open before their call was answered (dial with stream_establish_before_call_originate).
        self._waiting: dict[int, list[StreamSession]] = {}
        # The gather each call runs now, as asked (for its retries: maximum_tries).
        self._gathers: dict[int, GatherRequest] = {}
        self._forks: dict[int, ForkSession] = {}  # the RTP fork of each call that has one

    def runner_of(self, call: Call) -> CallRunner | None:
        runner = self.runners.get(id(call))
        return runner if runner is not None and runner.call is call else None

    # -- a call's media starts and stops -------------------------------------------------------

    def start(self, call: Call, awaiting: tuple[str, ...]) -> None:
        scenario = call.scenario or self.library.default
        engine = CallMedia(self.library.media(scenario, self.call_codec), at_end=self.library.at_end(scenario))
        call.meter = engine.meter  # read by the control plane while the call runs and after it ends
        runner = CallRunner(call, engine, self.clock, self, awaiting=awaiting)
        self.runners[id(call)] = runner
        for session in self._waiting.pop(id(call), []):
            self._attach(runner, session)
        self.spawn(self._run(runner), name=f"media-{call.call_control_id}", lasting=True)

    async def _run(self, runner: CallRunner) -> None:
        try:
            await runner.run()
        finally:
            if self.runners.get(id(runner.call)) is runner:
                del self.runners[id(runner.call)]
            self._gathers.pop(id(runner.call), None)
            fork = self._forks.pop(id(runner.call), None)
            if fork is not None:
                fork.close()

    def stop(self, call: Call) -> None:
        runner = self.runner_of(call)
        if runner is not None:
            runner.stop()

    def stop_all(self) -> None:
        for runner in list(self.runners.values()):
            runner.stop()

    # -- the call's streams --------------------------------------------------------------------

    def _attach(self, runner: CallRunner, session: StreamSession) -> None:
        runner.engine.add_app_audio(session.stream_id, session.app_audio)
        runner.attach(session)

    def stream_connected(self, session: StreamSession) -> None:
        """A stream of the call opened: it hears the call's media from now on (or from the answer)."""
        call = session.record.call
        runner = self.runner_of(call)
        if runner is not None:
            self._attach(runner, session)
        elif call.is_alive:
            self._waiting.setdefault(id(call), []).append(session)

    def stream_ended(self, session: StreamSession) -> None:
        call = session.record.call
        runner = self.runner_of(call)
        if runner is not None:
            runner.detach(session.stream_id)
        waiting = self._waiting.get(id(call))
        if waiting is not None and session in waiting:
            waiting.remove(session)
            if not waiting:
                del self._waiting[id(call)]

    # -- effects on the call's audio -----------------------------------------------------------

    def play_clip(self, call: Call, request: ClipRequest) -> None:
        runner = self.runner_of(call)
        if runner is None:  # the call ended between the command and now
            return
        self._play(runner, request)
        runner.poke()

    def _play(self, runner: CallRunner, request: ClipRequest) -> None:
        engine = runner.engine
        self.clips.play(engine.call_audio, engine.sample_rate, request, lambda events: self.clip_events(runner, events))

    def caller_is_live(self, call: Call) -> bool:
        """The call's caller has live steps queued or playing (``caller_plays``)."""
        runner = self.runner_of(call)
        return runner is not None and runner.engine.is_live

    def caller_gone(self, call: Call) -> bool:
        """The call's caller has hung up, or will once its queued live steps have played: it plays nothing more."""
        runner = self.runner_of(call)
        return runner is not None and (runner.engine.end is not None or runner.engine.cursor.hangup_queued)

    def caller_plays(self, call: Call, step: AudioStep | None) -> tuple[int, int] | None:
        """The caller plays ``step`` (None: hangs up) once the live steps given before it have played, its script
        paused meanwhile (docs/control-plane.md): where that starts on the call's media timeline and how long it
        lasts, in ms. None when the call's media is over."""
        runner = self.runner_of(call)
        if runner is None or runner.engine.end is not None:
            return None
        engine = runner.engine
        runner.catch_up()  # a runner asleep through quiet ticks: the step starts now, not where the sleep began
        scenario = call.scenario or self.library.default  # the key its media was made with (start)
        position = None if step is None else self.library.add_live(scenario, self.call_codec, step)
        start = engine.play_live(position)
        runner.poke()
        frames = engine.media.script.frames_in(position) if position is not None else 0
        return start * FRAME_MS, frames * FRAME_MS

    def stop_clips(self, stop: StopClips) -> None:
        runner = self.runner_of(stop.call)
        if runner is not None:
            self.clip_events(runner, runner.engine.call_audio.stop(stop.which, stop.kinds, overlay=stop.overlay))

    def start_recording(self, call: Call, request: RecordingRequest) -> None:
        runner = self.runner_of(call)
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

    def stop_recording(self, call: Call, recording_id: str) -> None:
        runner = self.runner_of(call)
        if runner is not None:
            self.recordings_saved(runner, runner.engine.stop_recording(recording_id))

    def pause_recording(self, call: Call, recording_id: str, paused: bool) -> None:
        runner = self.runner_of(call)
        recording = runner.engine.recordings.get(recording_id) if runner is not None else None
        if recording is not None:
            recording.paused = paused

    def start_gather(self, call: Call, request: GatherRequest) -> None:
        runner = self.runner_of(call)
        if runner is None:
            return
        engine, r = runner.engine, request
        prompt = r.prompt.key if r.prompt is not None else None
        previous = engine.start_gather(DigitGather(r.key, r.rules, engine.index * FRAME_MS, prompt))
        if previous is not None:
            self.gather_ended(runner, *previous)
        self._gathers[id(call)] = request
        if r.retry_prompt is not None:  # a retry after keys that were not valid: say so first
            self._play(runner, r.retry_prompt)
        if r.prompt is not None:
            self._play(runner, r.prompt)
        runner.poke()

    def stop_gather(self, call: Call) -> None:
        """gather_stop: the gather ends cancelled, and its prompt stops if it still plays."""
        runner = self.runner_of(call)
        if runner is None:
            return
        engine = runner.engine
        prompt = engine.gather.prompt if engine.gather is not None else None
        ended = engine.stop_gather("cancelled")
        if prompt is not None:
            self.clip_events(runner, engine.call_audio.stop(key=prompt))
        if ended is not None:
            self.gather_ended(runner, *ended)

    def start_timer(self, call: Call, after_ms: int, cue: Cue) -> None:
        runner = self.runner_of(call)
        if runner is not None:
            runner.catch_up()  # a runner asleep through quiet ticks: the timer counts from now, not from then
            runner.engine.add_timer(after_ms, cue)
            runner.poke()

    def start_fork(self, call: Call, fork: Fork) -> None:
        runner = self.runner_of(call)
        if runner is not None:
            session = ForkSession(fork.key, runner.engine, self.call_codec, fork.rx, fork.tx)
            self.spawn(self._open_fork(runner, session), name=f"fork-{call.call_control_id}")

    async def _open_fork(self, runner: CallRunner, session: ForkSession) -> None:
        await session.open()
        call = self._call(runner)
        if call.fork is None or call.fork.key != session.stream_id or runner.call is not call:
            session.close()  # stopped (or the call ended) while its sockets were being made
            return
        self._forks[id(call)] = session
        runner.attach(session)

    def stop_fork(self, call: Call, key: str) -> None:
        session = self._forks.pop(id(call), None)
        if session is not None and session.stream_id == key:
            session.close()
            runner = self.runner_of(call)
            if runner is not None:
                runner.detach(key)

    # -- legs that hear each other (a bridge) -----------------------------------------------------

    def connect(self, speaker: Call, listener: Call) -> None:
        ours, theirs = self.runner_of(speaker), self.runner_of(listener)
        if ours is None or theirs is None:  # one of them ended between the command and now
            return
        keys = {"speaker_key": leg_key(speaker.call_control_id), "listener_key": leg_key(listener.call_control_id)}
        bridge.connect(ours.engine, theirs.engine, **keys)
        ours.poke()  # a runner sleeping through quiet ticks now has a voice to carry every tick
        theirs.poke()

    def disconnect(self, speaker: Call, listener: Call) -> None:
        ours, theirs = self.runner_of(speaker), self.runner_of(listener)
        bridge.disconnect(
            ours.engine if ours is not None else None,
            theirs.engine if theirs is not None else None,
            speaker_key=leg_key(speaker.call_control_id),
            listener_key=leg_key(listener.call_control_id),
        )

    # -- CallMediaObserver ---------------------------------------------------------------------

    def _call(self, runner: CallRunner) -> Call:
        assert isinstance(runner.call, Call)
        return runner.call

    def call_dtmf(self, runner: CallRunner, digit: str) -> None:
        self.apply(reactions.dtmf_heard(self._call(runner), digit).effects)

    def clip_events(self, runner: CallRunner, events: Sequence[ClipEvent]) -> None:
        call = self._call(runner)
        for event in events:
            clip = event.clip
            self.apply(reactions.clip_event(call, event.what, clip.kind, event.status, clip.details).effects)

    def gather_ended(self, runner: CallRunner, status: str, digits: str) -> None:
        call = self._call(runner)
        request = self._gathers.pop(id(call), None)
        self.apply(reactions.gather_ended(self.context(), call, request, status, digits).effects)

    def recordings_saved(self, runner: CallRunner, recordings: Sequence[CallRecording]) -> None:
        for recording in recordings:
            recording.ended_at = utc_now()
            self.spawn(self._save(runner, recording), name=f"save-{recording.recording_id}")

    async def _save(self, runner: CallRunner, recording: CallRecording) -> None:
        name = await self.files.save(recording, runner.engine.sample_rate)
        urls = {recording.format: f"{recording.base_url}{URL_PREFIX}{name}"}
        saved = reactions.recording_saved(
            self._call(runner),
            recording.recording_id,
            recording.channels,
            recording.started_at,
            recording.ended_at,
            urls,
        )
        self.apply(saved.effects)

    def cue_due(self, runner: CallRunner, cue: object) -> None:
        assert isinstance(cue, Cue)
        self.apply(reactions.cue_due(self.context(), self._call(runner), cue).effects)

    def caller_said(self, runner: CallRunner, text: str, is_final: bool) -> None:
        self.apply(reactions.caller_said(self._call(runner), text, is_final).effects)

    def caller_done(self, runner: CallRunner, end: End) -> None:
        self.apply(reactions.caller_done(self.context(), self._call(runner), end).effects)
