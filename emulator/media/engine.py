"""CallMedia: the audio of one answered call, advanced 20 ms at a time. Sans-I/O: data in, ticks out.

The call owns its caller (the scenario's inbound script, one cursor from the answer on), its outbound track
(the scenario's outbound steps, plus whatever the call plays to the caller: each stream's app audio whose
target legs reach the caller) and the DTMF the caller sends. ``advance()`` is called once per tick by whoever
paces the call (``media/call_runner.py``) and returns a ``MediaTick`` saying what happened in that tick::

    media = CallMedia(library.media("ivr-menu", "PCMU"))
    media.add_app_audio("stream-1", AppAudio(PlayoutQueue(160), heard_by_caller=True))  # a stream's app audio
    tick = media.advance()     # MediaTick(number=0, inbound=Tick(...), outbound=0, mixed=None, dtmf=(), ...)

Streams subscribe to these ticks and only encode and write them; a stream that joins mid-call hears the
call from that tick on. Positions are rate-free (segment and frame of the compiled script, frame of the
outbound track), so a stream at another codec's rate picks the same moment from its own rendering of the
scenario; only ``mixed`` (the outbound frame when the caller hears more than the scenario) is PCM, at the
call's rate.

When the caller's script ends: a ``hangup`` step or a wait that fails ends the call at once; a script that
runs out (``completed``) lets the outbound track and the app's audio finish (at most ``TAIL_TICKS``), then
ends, unless the scenario says ``at_end: stay``: the caller then stays on the line, silent.

``play_live(position)`` has the caller play one of its scenario's live segments now (``MediaLibrary.add_live``;
None: hang up), after those queued before it; its script pauses meanwhile (``emulator.scenarios.cursor``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from emulator.levels import is_voiced
from emulator.media.call_audio import CallAudio, ClipEvent
from emulator.media.call_recorder import CallRecording
from emulator.media.conversation import ConversationMeter
from emulator.media.gather import DigitGather
from emulator.media.library import StreamMedia
from emulator.media.playout import PlayoutQueue
from emulator.media.ticks import PCM, AppAudio, MediaTick
from emulator.scenarios.cursor import End, ScriptCursor, Tick
from emulator.timing import FRAME_MS

# After the caller's script runs out the call stays up while the app's reply is still playing, for at most
# this long (the longest chunk Telnyx accepts is 30 s).
TAIL_TICKS = 30_000 // FRAME_MS
# Frames of another leg's voice that may wait to be heard (media/bridge.py): two legs tick on one clock, so one
# or two wait at most; more means the hearing leg stalled.
CROSSING_BACKLOG = 25


_NO_MARKS: dict[str, list[str]] = {}


def _due_order(timer: tuple[int, int, object]) -> tuple[int, int]:
    return timer[0], timer[1]


class CallMedia:
    """The media engine of one call; see the module docstring. Pure: no clock, no sockets, no tasks."""

    def __init__(self, media: StreamMedia, *, at_end: str = "hangup") -> None:
        self.media = media  # the scenario rendered at the call's rate
        self.at_end = at_end
        self.cursor = ScriptCursor(media.script)
        self.index = 0
        self.sources: dict[str, AppAudio] = {}
        self.call_audio = CallAudio(media.frame_samples)  # what the call itself plays: speak, playback, DTMF
        self.recordings: dict[str, CallRecording] = {}  # record_start's, while they record (or are paused)
        self.gather: DigitGather | None = None  # gather's, while it collects the caller's keys
        self.script_end: End | None = None  # how the inbound script ended (None: still running)
        self.ended_at: int | None = None  # the tick the script completed
        self.end: End | None = None  # set once the caller is done: nothing advances after that
        self.timers: list[tuple[int, int, object]] = []  # (due tick, order set, cue), sorted: see add_timer
        self._timers_set = 0
        # Other legs joined to this one (media/bridge.py): the playout queues, in their engines, that this
        # caller's voice goes to, and the keys of the sources, in ``sources``, that carry theirs.
        self.hearers: dict[str, PlayoutQueue] = {}
        self.legs: set[str] = set()
        self.meter = ConversationMeter()  # the conversation's timing, tick by tick (media/conversation.py)
        self._clears = -1  # the app's clears over its streams, while it has audio waiting (-1: it has none)
        self._streamed = False  # a stream's app audio played in this tick (set by _mix)

    @property
    def sample_rate(self) -> int:
        return self.media.sample_rate

    @property
    def frame_samples(self) -> int:
        return self.media.frame_samples

    @property
    def is_idle(self) -> bool:
        """Nothing will ever be heard again without a new source: the caller stays on the line, silent."""
        return (
            self.at_end == "stay"
            and self.script_end is not None
            and self.end is None
            and self.index >= self.media.outbound_frames
            and not self.call_audio.is_pending
            and not self.recordings  # a recording records the silence too
            and self.gather is None  # a gather's timeouts run on the call's clock
            and not self.timers  # so do timers
            and not self.is_joined  # another leg may talk at any moment
            and not self._app_playing()
            and not self.is_live
        )

    @property
    def is_live(self) -> bool:
        """The caller has live steps queued or playing (``play_live``)."""
        return self.end is None and self.cursor.is_live

    @property
    def is_joined(self) -> bool:
        """Another leg hears this one or is heard by it (a bridge): its audio crosses every tick."""
        return bool(self.hearers or self.legs)

    def quiet_ticks(self) -> int:
        """Ticks from now in which nothing observable happens (no digit, no end, no clip) while no stream is
        attached: a runner with nobody listening sleeps through them and ``skip``s them. 0 when unsure."""
        audio = self.call_audio
        if (
            self.sources
            or self.hearers
            or audio.is_pending
            or audio.heard
            or self.recordings
            or self.gather is not None
        ):
            return 0
        return self._timeline_quiet_ticks()

    def _timeline_quiet_ticks(self) -> int:
        """The quiet ticks of the caller's script, up to the next timer."""
        quiet = self._script_quiet_ticks()
        return min(quiet, self.timers[0][0] - self.index) if self.timers else quiet

    def _script_quiet_ticks(self) -> int:
        if self.end is not None or self.is_live:
            return 0
        if self.script_end is None:
            return self.cursor.quiet_ticks()
        return max(0, self.media.outbound_frames - self.index)  # the outbound track plays out, then the end

    def skip(self, ticks: int) -> None:
        """Jump ``ticks`` quiet ticks of the caller's script: the state that many advances would leave, without
        computing them. A source or clip added while they passed starts from the tick after them."""
        quiet = self._timeline_quiet_ticks()
        if not 0 <= ticks <= quiet:
            raise ValueError(f"cannot skip {ticks} ticks; {quiet} are quiet")
        caller = self.cursor.voiced_ahead(ticks) if self.script_end is None else np.zeros(ticks, dtype=np.bool_)
        app = np.zeros(ticks, dtype=np.bool_)
        ahead = self.media.outbound_voiced[self.index : self.index + ticks]
        app[: len(ahead)] = ahead
        self.meter.feed_run(caller.tolist(), app.tolist())
        if self.script_end is None:
            self.cursor.skip(ticks)
        self.index += ticks

    def add_timer(self, after_ms: int, cue: object) -> None:
        """``cue`` comes back in the ``cues`` of the tick that ends ``after_ms`` after the next one begins (whole
        ticks, rounded up): something due on the call's timeline, e.g. an answering machine's verdict or the
        call's time limit. A time limit of 30 s thus ends the call after exactly 1500 ticks of media."""
        self._timers_set += 1
        due = self.index + max(0, -(-after_ms // FRAME_MS) - 1)
        bisect.insort(self.timers, (due, self._timers_set, cue), key=_due_order)

    def _due_cues(self, n: int) -> tuple[object, ...]:
        due = tuple(cue for at, _, cue in self.timers if at <= n)
        self.timers = [timer for timer in self.timers if timer[0] > n]
        return due

    def play_live(self, position: int | None) -> int:
        """The caller plays the live segment at ``position`` of its script's track (None: hangs up) once those
        queued before it have played; returns the tick it starts at."""
        if self.end is not None:
            raise RuntimeError("the call's media has ended")
        return self.cursor.play_live(position, self.index)

    def add_app_audio(self, key: str, source: AppAudio) -> None:
        """Mix ``source`` (a stream's audio from the app, its playout at the call's rate) from the next tick on."""
        self.sources[key] = source

    def remove_app_audio(self, key: str) -> AppAudio | None:
        return self.sources.pop(key, None)

    def _app_playing(self) -> bool:
        if self.call_audio.is_pending and self.call_audio.is_heard:
            return True
        for source in self.sources.values():
            if source.playout.is_pending and source.playout.is_playing:
                return True
        return False

    def advance(self) -> MediaTick:
        """One tick: marks due, the caller's turn, the app's audio played and mixed."""
        if self.end is not None:
            raise RuntimeError("the call's media has ended")
        n = self.index
        # The usual tick: no stream's app audio queued, no clip, no recording. Checked once, cheaply.
        audio = self.call_audio
        clips = bool(audio.queue or audio.overlays)
        queued = any(source.playout.is_pending for source in self.sources.values()) if self.sources else False
        busy = clips or queued or bool(self.recordings) or self.gather is not None
        marks = self._take_marks() if self.sources else _NO_MARKS
        app_playing = (clips or queued) and self._app_playing()
        step: Tick | None = None
        dtmf: tuple[str, ...] = ()
        said: tuple[tuple[str, bool], ...] = ()
        heard = audio.take_heard() if audio.heard else ()  # drained each tick, script or not
        if self.script_end is None or self.cursor.is_live:
            echoed = [name for names in marks.values() for name in names] if marks else ()
            step = self.cursor.advance(app_playing, echoed, heard)
            dtmf, said = step.dtmf, step.said
            if self.hearers and step.end is None:
                self._cross(step)
            if step.end is self.script_end is not None:  # live steps after the script's end are over: silence
                step = None
            elif step.end is not None:
                self.script_end = step.end
                if step.end.reason != "completed":  # a hangup step, or a wait that failed: no media now
                    return self._finish(MediaTick(n, None, n, None, dtmf, marks, step.end, said=said))
                self.ended_at, step = n, None
        if self.ended_at is not None and self.at_end == "hangup" and step is None and self._tail_over(n, app_playing):
            return self._finish(MediaTick(n, None, n, None, dtmf, marks, self.script_end, said=said))
        cues = self._due_cues(n) if self.timers and self.timers[0][0] <= n else ()
        if not busy:
            self.index = n + 1
            self._meter(n, step, None, False)
            if cues or said:
                return MediaTick(n, step, n, None, dtmf, marks, cues=cues, said=said)
            return MediaTick(n, step, n, None, dtmf, marks)
        stopped: list[ClipEvent] = []
        if self.gather is not None and dtmf and self.gather.prompt is not None:
            stopped = audio.stop(key=self.gather.prompt)  # a key pressed during the prompt stops it, as on Telnyx
        mixed, events = self._mix(n)
        if stopped:
            events = (*stopped, *events)
        self._meter(n, step, mixed, queued)
        saved = self._record(n, step, mixed) if self.recordings else ()
        gathered = self._gather(n, dtmf) if self.gather is not None else None
        self.index = n + 1
        return MediaTick(n, step, n, mixed, dtmf, marks, None, events, saved, gathered, cues, said)

    def _meter(self, n: int, step: Tick | None, mixed: PCM | None, queued: bool) -> None:
        """The tick, as the conversation metrics see it: each side's voice, the app's clears and buffered audio.
        Cheap on the usual tick: the streams' queues are looked at only while they hold audio or the meter waits
        to see whether the app clears after a barge-in."""
        caller = step is not None and self.media.script.is_voiced(step)
        if mixed is not None:
            app = is_voiced(mixed)
        else:
            voiced = self.media.outbound_voiced
            app = n < len(voiced) and bool(voiced[n])
        meter = self.meter
        if not (queued or meter.yielding):
            self._clears = -1
            if caller or app:
                meter.feed(caller, app)
            else:
                meter.feed_silent()
            return
        streams = [source.playout for key, source in self.sources.items() if key not in self.legs]
        clears = sum(playout.clears for playout in streams)  # counted from the first tick the app's audio waits
        cleared, self._clears = 0 <= self._clears < clears, clears
        rates = ((p.counters.queued_samples, p.counters.sample_rate or self.sample_rate) for p in streams)
        buffered = max((samples * 1000 // rate for samples, rate in rates), default=0) if queued else 0
        meter.feed(caller, app, cleared=cleared, buffered_ms=buffered, streamed=queued and self._streamed)

    def _cross(self, step: Tick) -> None:
        """The caller's frame goes to every leg that hears it. Only frames with a voice: a leg's queue that runs
        dry means silence there, so the other leg's turn-taking hears a pause as one (``_app_playing``)."""
        frame = self.media.script.frame(step)
        if not is_voiced(frame):  # silence, or noise under a voice (emulator/levels.py)
            return
        for playout in self.hearers.values():
            # A leg whose pacing stalled (or stopped) must not pile up audio: past half a second, drop.
            if playout.counters.queued_chunks < CROSSING_BACKLOG:
                playout.add_audio(frame, frame)

    def _tail_over(self, n: int, app_playing: bool) -> bool:
        assert self.ended_at is not None
        return n >= self.media.outbound_frames and (not app_playing or n - self.ended_at >= TAIL_TICKS)

    def _finish(self, tick: MediaTick) -> MediaTick:
        self.end = tick.end
        self.index = tick.number + 1
        for source in self.sources.values():
            source.playout.finish()
        return tick._replace(
            events=tuple(self.hang_up()), saved=tuple(self.stop_recording()), gathered=self.stop_gather("call_hangup")
        )

    def hang_up(self) -> list[ClipEvent]:
        """The call ended: every clip still queued or playing ends with ``call_hangup``."""
        return self.call_audio.stop("all", status="call_hangup")

    def start_gather(self, gather: DigitGather) -> tuple[str, str] | None:
        """Collect the caller's keys; a gather already running ends, cancelled (its result is returned)."""
        previous = self.stop_gather("cancelled")
        self.gather = gather
        return previous

    def stop_gather(self, status: str) -> tuple[str, str] | None:
        gather, self.gather = self.gather, None
        return gather.stop(status) if gather is not None else None

    def _gather(self, n: int, dtmf: tuple[str, ...]) -> tuple[str, str] | None:
        gather = self.gather
        assert gather is not None
        prompt = gather.prompt
        playing = prompt is not None and any(clip.key == prompt for clip in self.call_audio.playing())
        result = gather.feed(n * FRAME_MS, dtmf, playing)
        if result is not None:
            self.gather = None
        return result

    def start_recording(self, recording: CallRecording) -> None:
        self.recordings[recording.recording_id] = recording

    def stop_recording(self, recording_id: str | None = None) -> list[CallRecording]:
        """End one recording (or all): they are saved by whoever asked."""
        ids = [recording_id] if recording_id is not None else list(self.recordings)
        return [self.recordings.pop(key) for key in ids if key in self.recordings]

    def _record(self, n: int, step: Tick | None, mixed: PCM | None) -> tuple[CallRecording, ...]:
        caller = self.media.script.frame(step) if step is not None else np.zeros(self.frame_samples, np.int16)
        call = mixed if mixed is not None else self._outbound_pcm(n)
        full: list[CallRecording] = []
        for recording in self.recordings.values():
            recording.add(caller, call)
            if recording.is_full:
                full.append(recording)
        for recording in full:
            del self.recordings[recording.recording_id]
        return tuple(full)

    def _take_marks(self) -> dict[str, list[str]]:
        due: dict[str, list[str]] | None = None
        for key, source in self.sources.items():
            if source.marks_due:
                if due is None:
                    due = {}
                due[key] = source.marks_due.copy()
                source.marks_due.clear()  # in place: the stream's message reader appends to this same list
        return due or _NO_MARKS

    def _mix(self, n: int) -> tuple[PCM | None, tuple[ClipEvent, ...]]:
        """Every source and clip plays its frame; the outbound frame as PCM when the caller hears any of them."""
        mixed: NDArray[np.int32] | None = None
        events: tuple[ClipEvent, ...] = ()
        if self.call_audio.is_pending:
            clips, events = self.call_audio.take()
            if clips is not None:
                mixed = self._outbound_pcm(n).astype(np.int32) + clips
        self._streamed = False
        for key, source in self.sources.items():
            if not source.playout.is_pending:  # the usual tick: the app sent nothing, or it has all played
                continue
            played = source.playout.take()
            source.marks_due.extend(played.marks)
            if played.pcm is not None and key not in self.legs:  # the app's own audio (its pacing: underruns)
                self._streamed = True
            if played.pcm is None or not source.heard_by_caller:
                continue
            if mixed is None:
                mixed = self._outbound_pcm(n).astype(np.int32)
            mixed += played.pcm
        if mixed is None:
            return None, events
        return np.clip(mixed, -32768, 32767).astype(np.int16), events

    def inbound_frame(self, tick: MediaTick) -> PCM:
        """The caller's audio of ``tick`` at the call's rate (silence once its script is over)."""
        if tick.inbound is None:
            return np.zeros(self.frame_samples, dtype=np.int16)
        return self.media.script.frame(tick.inbound)

    def outbound_frame(self, tick: MediaTick) -> PCM:
        """The call's outbound audio of ``tick`` at the call's rate: the mix when there is one."""
        return tick.mixed if tick.mixed is not None else self._outbound_pcm(tick.outbound)

    def _outbound_pcm(self, n: int) -> PCM:
        fs = self.frame_samples
        frame = self.media.outbound_pcm[n * fs : (n + 1) * fs]
        return frame if len(frame) == fs else np.zeros(fs, dtype=np.int16)

    def ticks(self) -> Iterator[MediaTick]:
        """Advance until the caller is done (``at_end: stay`` never is): for renders and tests."""
        while self.end is None:
            yield self.advance()
