"""Scenario audio encoded once into ready-to-send frame payloads, cached per (scenario, codec).

A stream's hot path then only picks a precomputed base64 string per 20 ms tick: rendering, encoding
and base64 happen once per scenario and codec, however many streams play it.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emulator import codecs
from emulator.scenarios import Scenario, ScenarioError, load_scenario, render_track

FRAME_MS = codecs.FRAME_MS


@dataclass(frozen=True, slots=True)
class StreamMedia:
    """Both tracks of a scenario as base64 payloads, one per 20 ms frame, equal in length."""

    scenario: str
    codec: str
    sample_rate: int
    inbound: tuple[str, ...]
    outbound: tuple[str, ...]
    # The same audio as PCM at sample_rate, padded to whole frames: for recordings, and for mixing
    # the app's audio into the outbound track.
    inbound_pcm: np.ndarray
    outbound_pcm: np.ndarray
    # DTMF digits keyed by the number of media ticks sent before them: a digit is reported when its
    # tone has finished, as a detector on the call would.
    dtmf: Mapping[int, tuple[str, ...]]

    @property
    def frames(self) -> int:
        return len(self.inbound)

    @property
    def duration_ms(self) -> int:
        return self.frames * FRAME_MS


def _padded(pcm: np.ndarray, frames: int, info: codecs.CodecInfo) -> np.ndarray:
    padded = np.zeros(frames * info.frame_samples, dtype=np.int16)
    padded[: len(pcm)] = pcm
    padded.flags.writeable = False  # shared by every stream of this scenario and codec
    return padded


def _payloads(padded: np.ndarray, frames: int, info: codecs.CodecInfo) -> tuple[str, ...]:
    encoded = codecs.encode(info.codec, padded)
    size = info.frame_bytes
    # Identical frames (silence above all) share one string object.
    seen: dict[str, str] = {}
    out = []
    for i in range(frames):
        payload = base64.b64encode(encoded[i * size : (i + 1) * size]).decode("ascii")
        out.append(seen.setdefault(payload, payload))
    return tuple(out)


def build_stream_media(scenario: Scenario, codec: str) -> StreamMedia:
    info = codecs.codec_info(codec)
    inbound = render_track(scenario.inbound, info.sample_rate)
    outbound = render_track(scenario.outbound, info.sample_rate)
    samples = max(len(inbound.pcm), len(outbound.pcm), 1)
    frames = math.ceil(samples / info.frame_samples)
    dtmf: dict[int, list[str]] = {}
    for event in inbound.dtmf:
        tick = min(frames, math.ceil((event.at_ms + event.duration_ms) / FRAME_MS))
        dtmf.setdefault(tick, []).append(event.digit)
    inbound_pcm = _padded(inbound.pcm, frames, info)
    outbound_pcm = _padded(outbound.pcm, frames, info)
    return StreamMedia(
        scenario=scenario.name,
        codec=info.codec,
        sample_rate=info.sample_rate,
        inbound=_payloads(inbound_pcm, frames, info),
        outbound=_payloads(outbound_pcm, frames, info),
        inbound_pcm=inbound_pcm,
        outbound_pcm=outbound_pcm,
        dtmf={tick: tuple(digits) for tick, digits in dtmf.items()},
    )


class MediaLibrary:
    """The loaded scenarios and their encoded media, built on first use and kept."""

    def __init__(self, scenarios: Mapping[str, Scenario], default: str) -> None:
        self.scenarios = dict(scenarios)
        self.default = self.resolve(default)
        self._cache: dict[tuple[str, str], StreamMedia] = {}

    def resolve(self, name_or_path: str) -> str:
        """A scenario name known to the library; a YAML path is loaded and added under its name."""
        if name_or_path in self.scenarios:
            return name_or_path
        path = Path(name_or_path)
        if path.suffix in (".yaml", ".yml"):
            scenario = load_scenario(path)
            self.scenarios[scenario.name] = scenario
            return scenario.name
        known = ", ".join(sorted(self.scenarios)) or "none"
        raise ScenarioError(f"{name_or_path}: no such scenario (known: {known}; or give a .yaml path)")

    def media(self, scenario: str, codec: str) -> StreamMedia:
        key = (scenario, codec)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = build_stream_media(self.scenarios[scenario], codec)
        return cached
