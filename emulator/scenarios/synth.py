"""Pure signal generation for scenario audio: silence, tones, DTMF, noise, resampling, int16 conversion.

Everything here is deterministic numpy with no I/O, so a scenario renders to the same samples on every run.
Levels are peak dBFS relative to 32768, the int16 full scale soundfile also uses, so a 16-bit file decoded to float
and converted back comes out bit-exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, TypeVar

import numpy as np
import soxr
from numpy.typing import NDArray

__all__ = [
    "DTMF_FREQUENCIES",
    "FADE_MS",
    "NOISE_COLORS",
    "dtmf_digit",
    "ms_to_samples",
    "noise",
    "peak_gain",
    "resample",
    "silence",
    "to_int16",
    "tone",
]

#: Standard DTMF (ITU-T Q.23) keypad: digit -> (low-group Hz, high-group Hz).
DTMF_FREQUENCIES: Final[dict[str, tuple[int, int]]] = {
    "1": (697, 1209),
    "2": (697, 1336),
    "3": (697, 1477),
    "A": (697, 1633),
    "4": (770, 1209),
    "5": (770, 1336),
    "6": (770, 1477),
    "B": (770, 1633),
    "7": (852, 1209),
    "8": (852, 1336),
    "9": (852, 1477),
    "C": (852, 1633),
    "*": (941, 1209),
    "0": (941, 1336),
    "#": (941, 1477),
    "D": (941, 1633),
}

#: Raised-cosine ramp at each end of a tone; a hard start/stop would click (broadband energy) and can
#: trip DTMF/VAD detectors in the app under test.
FADE_MS: Final = 5

#: Noise spectra: white is flat, pink falls 3 dB per octave (like room and street noise), brown 6 dB.
NOISE_COLORS: Final = ("white", "pink", "brown")

#: Noise is band-limited from here up: a phone line carries nothing below ~100 Hz, and brown noise's
#: huge sub-audio swings would otherwise eat the level budget without being heard.
NOISE_LOW_CUT_HZ: Final = 100.0

_INT16_FULL_SCALE: Final = 32768.0

_Sample = TypeVar("_Sample", np.int16, np.float32, np.float64)


def ms_to_samples(ms: int, rate: int) -> int:
    """Number of samples in `ms` milliseconds at `rate` Hz, rounded half up (exact for 8/16/48 kHz)."""
    if ms < 0 or rate <= 0:
        raise ValueError(f"need ms >= 0 and rate > 0, got ms={ms}, rate={rate}")
    return (ms * rate + 500) // 1000


def silence(ms: int, rate: int) -> NDArray[np.int16]:
    """`ms` milliseconds of digital silence."""
    return np.zeros(ms_to_samples(ms, rate), dtype=np.int16)


def tone(frequencies: float | Sequence[float], ms: int, level_dbfs: float, rate: int) -> NDArray[np.int16]:
    """A sine (or a sum of sines) lasting `ms`, whose summed peak is at most `level_dbfs`.

    With n frequencies each component gets 1/n of the peak amplitude, so the sum can never clip and a
    single tone's measured peak equals `level_dbfs`. Components at or above Nyquist are dropped (as a
    band-limited phone channel would) rather than aliased into a wrong, audible frequency.
    """
    return to_int16(_tone_float(frequencies, ms, level_dbfs, rate))


def dtmf_digit(digit: str, ms: int, level_dbfs: float, rate: int) -> NDArray[np.int16]:
    """The in-band DTMF tone pair for one keypad `digit` (0-9, *, #, A-D), `ms` long."""
    try:
        pair = DTMF_FREQUENCIES[digit.upper()]
    except KeyError:
        raise ValueError(f"not a DTMF digit: {digit!r}") from None
    return tone(pair, ms, level_dbfs, rate)


def noise(color: str, level_dbfs: float, n: int, rate: int, seed: int) -> NDArray[np.float64]:
    """`n` samples of seeded noise whose RMS equals a sine's at `level_dbfs` (peak dBFS, like `tone`).

    The spectrum is shaped in the frequency domain, so the result is exactly periodic: it can be looped
    end to start without a seam. The same arguments always give the same samples.
    """
    if color not in NOISE_COLORS:
        raise ValueError(f"noise color must be one of {', '.join(NOISE_COLORS)}, got {color!r}")
    if n <= 0 or rate <= 0:
        raise ValueError(f"need n > 0 and rate > 0, got n={n}, rate={rate}")
    rng = np.random.default_rng(seed)
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1 / rate)
    slope = {"white": 0.0, "pink": 0.5, "brown": 1.0}[color]  # amplitude ~ 1/f**slope, power ~ 1/f**(2*slope)
    shape = np.zeros_like(freqs)
    band = freqs >= NOISE_LOW_CUT_HZ
    shape[band] = (freqs[band] / NOISE_LOW_CUT_HZ) ** -slope
    out = np.fft.irfft(spectrum * shape, n)
    rms = float(np.sqrt(np.mean(out**2)))
    # A sine of peak A has RMS A/sqrt(2): matching that makes "noise at -40" as loud as "a tone at -40".
    target = 10.0 ** (level_dbfs / 20.0) / math.sqrt(2.0)
    scaled: NDArray[np.float64] = out * (target / rms) if rms > 0 else out
    return scaled


def peak_gain(samples: NDArray[np.floating], level_dbfs: float) -> float:
    """The factor that brings the peak of `samples` to `level_dbfs` (1.0 for all-zero input)."""
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    return 10.0 ** (level_dbfs / 20.0) / peak if peak > 0 else 1.0


def resample(pcm: NDArray[_Sample], from_rate: int, to_rate: int) -> NDArray[_Sample]:
    """Resample mono `pcm` with soxr (HQ); the dtype is preserved and the length is round(n * to / from)."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate:
        return pcm.copy()
    if pcm.size == 0:
        return pcm[:0].copy()
    out: NDArray[_Sample] = soxr.resample(pcm, from_rate, to_rate, quality="HQ")
    return out


def to_int16(samples: NDArray[np.floating]) -> NDArray[np.int16]:
    """Float samples (full scale 1.0 = 32768) to int16, rounding to nearest; +1.0 and beyond clip to 32767."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * _INT16_FULL_SCALE)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def _tone_float(frequencies: float | Sequence[float], ms: int, level_dbfs: float, rate: int) -> NDArray[np.float64]:
    freqs = [float(frequencies)] if isinstance(frequencies, int | float) else [float(f) for f in frequencies]
    if not freqs or any(f <= 0 for f in freqs):
        raise ValueError(f"need one or more positive frequencies, got {frequencies!r}")
    n = ms_to_samples(ms, rate)
    amplitude = 10.0 ** (level_dbfs / 20.0) / len(freqs)
    t = np.arange(n, dtype=np.float64) / rate
    out = np.zeros(n, dtype=np.float64)
    for f in freqs:
        if f < rate / 2:
            out += amplitude * np.sin(2.0 * np.pi * f * t)
    fade = min(ms_to_samples(FADE_MS, rate), n // 2)
    if fade > 0:
        # Half a cosine period from 0 to 1: smooth at both ends, so no step in the first derivative either.
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade, dtype=np.float64) / fade)
        out[:fade] *= ramp
        out[n - fade :] *= ramp[::-1]
    return out
