"""Scenario audio encoded once into ready-to-send frame payloads, cached per (scenario, codec).

A stream's hot path then only picks a precomputed base64 string per 20 ms tick: rendering, encoding
and base64 happen once per scenario and codec, however many streams play it.

The caller's track is a compiled script (``emulator.scenarios.segments``): audio segments, waits for the app,
and hang-ups, walked tick by tick by each stream's own ``ScriptCursor`` (``emulator.scenarios.cursor``). Every
audio segment and the idle loop played during waits are pre-encoded here. The outbound track (what
the call plays to the caller) is plain audio.

The caller's **live steps** (``POST /_emulator/calls/{id}/caller``) join a scenario's media here too
(``add_live``): each distinct step is rendered and encoded once per codec, appended after the script's segments
of every codec's media of the scenario, and kept, so a call's ticks name it as they name a script segment.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emulator.levels import voiced_frames
from emulator.media import codecs
from emulator.scenarios.cursor import render, render_track
from emulator.scenarios.loader import SCENARIO_SUFFIXES, Scenario, ScenarioError, load_scenario
from emulator.scenarios.segments import AudioSegment, CompiledTrack, compile_track
from emulator.scenarios.steps import AudioStep, Play
from emulator.timing import FRAME_MS


@dataclass(frozen=True, slots=True)
class StreamMedia:
    """A scenario, encoded for one codec."""

    scenario: str
    codec: str
    sample_rate: int
    frame_samples: int
    script: CompiledTrack  # the caller (inbound track)
    # Per script segment its frames' payloads (() unless audio), then per live segment (``add_live``): a list, since
    # live ones are appended while the emulator runs.
    segment_payloads: list[tuple[str, ...]]
    idle_payloads: tuple[str, ...]  # the loop played while the caller waits
    outbound: tuple[str, ...]  # the outbound script's frames
    outbound_pcm: np.ndarray  # the same as PCM, for mixing in the app's audio and for recordings
    outbound_voiced: np.ndarray  # whether each of its frames is a voice (emulator/levels.py): the metrics
    silence: str  # one frame of silence, for either track once its script is over
    # What an app that never answers receives: its length and the DTMF digits in it.
    nominal_frames: int
    nominal_dtmf: tuple[str, ...]

    @property
    def outbound_frames(self) -> int:
        return len(self.outbound)

    @property
    def duration_ms(self) -> int:
        return self.nominal_frames * FRAME_MS


def _encode_frames(pcm: np.ndarray, info: codecs.CodecInfo, seen: dict[str, str]) -> tuple[str, ...]:
    fs = info.frame_samples
    frames = -(-len(pcm) // fs)
    padded = np.zeros(frames * fs, dtype=np.int16)
    padded[: len(pcm)] = pcm
    encoded = codecs.encode(info.codec, padded)
    size = info.frame_bytes
    out = []
    for i in range(frames):
        payload = base64.b64encode(encoded[i * size : (i + 1) * size]).decode("ascii")
        out.append(seen.setdefault(payload, payload))  # identical frames (silence above all) share one string
    return tuple(out)


def build_stream_media(scenario: Scenario, codec: str) -> StreamMedia:
    info = codecs.codec_info(codec)
    compiled = compile_track(scenario.inbound, info.sample_rate)
    seen: dict[str, str] = {}
    segments = [
        _encode_frames(segment.pcm, info, seen) if isinstance(segment, AudioSegment) else ()
        for segment in compiled.segments
    ]
    outbound = render_track(scenario.outbound, info.sample_rate)
    outbound_pcm = np.zeros(-(-len(outbound.pcm) // info.frame_samples) * info.frame_samples, dtype=np.int16)
    outbound_pcm[: len(outbound.pcm)] = outbound.pcm
    outbound_pcm.flags.writeable = False  # shared by every stream of this scenario and codec
    nominal = render(compiled)
    return StreamMedia(
        scenario=scenario.name,
        codec=info.codec,
        sample_rate=info.sample_rate,
        frame_samples=info.frame_samples,
        script=compiled,
        segment_payloads=segments,
        idle_payloads=_encode_frames(compiled.idle, info, seen),
        outbound=_encode_frames(outbound_pcm, info, seen),
        outbound_pcm=outbound_pcm,
        outbound_voiced=voiced_frames(outbound_pcm, info.frame_samples),
        silence=_encode_frames(np.zeros(info.frame_samples, dtype=np.int16), info, seen)[0],
        nominal_frames=max(-(-len(nominal.pcm) // info.frame_samples), len(outbound_pcm) // info.frame_samples),
        nominal_dtmf=tuple(event.digit for event in nominal.dtmf),
    )


# Distinct live steps are kept while the emulator runs (recordings replay them by position): this much at most.
LIVE_BUDGET_MS = 30 * 60_000


class LiveBudgetSpent(Exception):
    """No room for another distinct live step: the message says why."""


class MediaLibrary:
    """The loaded scenarios and their encoded media, built on first use and kept.

    A scenario is known by its **key**: a name from the scenario folder (``tone``) as it is, a scenario file by
    its resolved absolute path. Names never contain a suffix and paths always do, so a file called ``tone.yaml``
    somewhere else can never stand in for the folder's ``tone``, nor share its encoded media. A file is loaded the
    first time it is asked for and kept, like the folder's scenarios, which are loaded once at start-up.
    """

    def __init__(self, scenarios: Mapping[str, Scenario], default: str) -> None:
        self.scenarios = dict(scenarios)
        self.default = self.resolve(default)
        self._cache: dict[tuple[str, str], StreamMedia] = {}
        # Each scenario's live steps in the order they were added, and the position of each (by its key).
        self._live: dict[str, list[AudioStep]] = {}
        self._live_at: dict[tuple[str, Hashable], int] = {}
        self._live_ms = 0.0  # how much distinct live audio is kept, all scenarios together

    def resolve(self, name_or_path: str) -> str:
        """The key of a scenario name or ``.yaml``/``.yml`` path (loading the file); ScenarioError if neither."""
        if name_or_path in self.scenarios:
            return name_or_path
        path = Path(name_or_path)
        if path.suffix not in SCENARIO_SUFFIXES:
            known = ", ".join(sorted(k for k in self.scenarios if not _is_file_key(k))) or "none"
            raise ScenarioError(f"{name_or_path}: no such scenario (known: {known}; or give a .yaml path)")
        key = str(path.resolve())
        if key not in self.scenarios:
            self.scenarios[key] = load_scenario(path)
        return key

    def at_end(self, scenario: str) -> str:
        """What the caller of ``scenario`` does when its script runs out: hangup or stay."""
        return self.scenarios[scenario].at_end

    def media(self, scenario: str, codec: str) -> StreamMedia:
        """The media of the scenario with key ``scenario`` (from ``resolve``) for ``codec``."""
        key = (scenario, codec)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = build_stream_media(self.scenarios[scenario], codec)
            for step in self._live.get(scenario, ()):  # at the same positions as in the scenario's other codecs
                self._add_live(cached, scenario, step)
        return cached

    def add_live(self, scenario: str, codec: str, step: AudioStep) -> int:
        """The position of ``step`` as a live segment of ``scenario``'s caller (``CompiledTrack.live``), the same
        in the scenario's media for every codec: rendered into each (``codec``'s built first if need be, the
        others as they are built) the first time it is asked for, with the caller's gain and background noise."""
        self.media(scenario, codec)
        key = (scenario, _live_key(step))
        known = self._live_at.get(key)
        if known is None:
            if self._live_ms + step.duration_ms > LIVE_BUDGET_MS:
                raise LiveBudgetSpent(
                    f"the emulator keeps every distinct live step for as long as it runs, {LIVE_BUDGET_MS // 60_000} "
                    "minutes of them at most, and they are spent: reuse steps, or restart the emulator"
                )
            self._live_ms += step.duration_ms
            self._live.setdefault(scenario, []).append(step)
            medias = [media for (name, _), media in self._cache.items() if name == scenario]
            (known,) = {self._add_live(media, scenario, step) for media in medias}
            self._live_at[key] = known
        return known

    def _add_live(self, media: StreamMedia, scenario: str, step: AudioStep) -> int:
        (segment,) = compile_track([step], media.sample_rate, self.scenarios[scenario].inbound.mix).segments
        assert isinstance(segment, AudioSegment)
        media.segment_payloads.append(_encode_frames(segment.pcm, codecs.codec_info(media.codec), {}))
        return media.script.add_live(segment)


def _is_file_key(key: str) -> bool:
    return Path(key).suffix in SCENARIO_SUFFIXES


def _live_key(step: AudioStep) -> Hashable:
    """What makes two live steps the same audio: their fields, and for a file its samples (a URL's may change)."""
    if isinstance(step, Play):
        return (step.file, step.sample_rate, step.level, step.max_ms, hashlib.sha1(step.samples.tobytes()).hexdigest())
    return step
