"""emulator.scenarios.synth: exact lengths, frequencies by FFT, DTMF pairs by Goertzel, levels in dBFS."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from emulator.scenarios import synth

RATES = [8000, 16000]


def goertzel_power(samples: NDArray[np.int16], freq: float, rate: int) -> float:
    """Signal power at one frequency: the Goertzel recurrence, as a DTMF receiver would run it."""
    coeff = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples.astype(np.float64).tolist():
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def detect_dtmf(samples: NDArray[np.int16], rate: int) -> str:
    """The digit whose low and high frequencies are the strongest of their groups, each 10x above the rest."""
    lows, highs = [697, 770, 852, 941], [1209, 1336, 1477, 1633]
    low_p = [goertzel_power(samples, f, rate) for f in lows]
    high_p = [goertzel_power(samples, f, rate) for f in highs]
    lo, hi = int(np.argmax(low_p)), int(np.argmax(high_p))
    assert all(p * 10 < low_p[lo] for i, p in enumerate(low_p) if i != lo)
    assert all(p * 10 < high_p[hi] for i, p in enumerate(high_p) if i != hi)
    return next(d for d, pair in synth.DTMF_FREQUENCIES.items() if pair == (lows[lo], highs[hi]))


def peak_dbfs_from_rms(pcm: NDArray[np.int16]) -> float:
    """A sine's peak level estimated from its RMS (robust to where the samples fall on the wave)."""
    rms = np.sqrt(np.mean((pcm.astype(np.float64) / 32768.0) ** 2))
    return 20 * math.log10(rms * math.sqrt(2))


def fft_peak_hz(pcm: NDArray[np.int16] | NDArray[np.float32], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize(("ms", "rate", "expected"), [(20, 8000, 160), (20, 16000, 320), (1, 22050, 22), (0, 8000, 0)])
def test_ms_to_samples(ms, rate, expected):
    assert synth.ms_to_samples(ms, rate) == expected


@pytest.mark.parametrize("rate", RATES)
def test_silence_is_exact_zeros(rate):
    pcm = synth.silence(500, rate)
    assert pcm.dtype == np.int16
    assert len(pcm) == rate // 2
    assert not pcm.any()


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("freq", [440, 1000, 3000])
def test_tone_frequency_by_fft_peak(rate, freq):
    pcm = synth.tone(freq, 1000, -12, rate)
    assert pcm.dtype == np.int16
    assert len(pcm) == rate
    assert fft_peak_hz(pcm, rate) == pytest.approx(freq, abs=1.0)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("level", [0, -6, -12, -30])
def test_tone_level_dbfs(rate, level):
    pcm = synth.tone(1000, 1000, level, rate)
    middle = pcm[rate // 10 : -rate // 10]  # away from the fades
    assert peak_dbfs_from_rms(middle) == pytest.approx(level, abs=0.5)
    assert 20 * math.log10(np.abs(middle.astype(np.float64)).max() / 32768) == pytest.approx(level, abs=0.5)


def test_tone_sum_shares_the_peak_so_it_never_clips():
    pcm = synth.tone([697, 1209], 1000, -1, 8000)
    assert np.abs(pcm.astype(np.int32)).max() <= 32768 * 10 ** (-1 / 20) + 1
    for f in (697, 1209):
        # Each of two components carries half the amplitude (-6.02 dB); a DFT bin holds A * N / 2.
        amplitude = 2 * math.sqrt(goertzel_power(pcm, f, 8000)) / len(pcm) / 32768
        assert 20 * math.log10(amplitude) == pytest.approx(-1 - 6.02, abs=0.5)


def test_tone_fades_in_and_out_without_a_click():
    rate = 16000
    pcm = synth.tone(1000, 200, 0, rate).astype(np.float64)
    fade = synth.ms_to_samples(synth.FADE_MS, rate)
    assert pcm[0] == 0
    assert np.abs(pcm[: fade // 4]).max() < 0.15 * 32768
    assert np.abs(pcm[-fade // 4 :]).max() < 0.15 * 32768
    assert np.abs(pcm[fade:-fade]).max() > 0.99 * 32767
    assert np.abs(np.diff(pcm)).max() < 2 * math.pi * 1000 / rate * 32768 * 1.01  # no step beyond the sine's own slope


def test_tone_components_above_nyquist_are_dropped_not_aliased():
    assert not synth.tone(5000, 100, -6, 8000).any()
    pcm = synth.tone([1000, 5000], 1000, 0, 8000)
    assert fft_peak_hz(pcm, 8000) == pytest.approx(1000, abs=1)
    assert peak_dbfs_from_rms(pcm[800:-800]) == pytest.approx(-6.02, abs=0.5)


def test_tone_is_deterministic():
    assert np.array_equal(synth.tone([440, 480], 777, -16, 8000), synth.tone([440, 480], 777, -16, 8000))


def test_tone_rejects_no_frequencies():
    with pytest.raises(ValueError):
        synth.tone([], 100, -12, 8000)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("digit", list("0123456789*#ABCD"))
def test_dtmf_digit_pairs_by_goertzel(rate, digit):
    pcm = synth.dtmf_digit(digit, 100, -10, rate)
    assert len(pcm) == rate // 10
    assert detect_dtmf(pcm, rate) == digit


def test_dtmf_digit_lowercase_letters_and_bad_digits():
    assert np.array_equal(synth.dtmf_digit("a", 50, -10, 8000), synth.dtmf_digit("A", 50, -10, 8000))
    with pytest.raises(ValueError, match="not a DTMF digit: 'x'"):
        synth.dtmf_digit("x", 50, -10, 8000)


def test_to_int16_rounds_and_clips():
    floats = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 1.7, -1.7, 1 / 32768, 0.4 / 32768])
    assert synth.to_int16(floats).tolist() == [0, 16384, -16384, 32767, -32768, 32767, -32768, 1, 0]
    assert synth.to_int16(floats).dtype == np.int16


def test_resample_length_dtype_and_identity():
    x = np.sin(np.arange(22050) * 2 * np.pi * 440 / 22050).astype(np.float32)
    y = synth.resample(x, 22050, 8000)
    assert len(y) == 8000 and y.dtype == np.float32
    assert fft_peak_hz(y, 8000) == pytest.approx(440, abs=1)
    pcm = synth.tone(440, 100, -6, 16000)
    down = synth.resample(pcm, 16000, 8000)
    assert down.dtype == np.int16 and len(down) == 800
    same = synth.resample(pcm, 16000, 16000)
    assert np.array_equal(same, pcm) and same is not pcm
    assert len(synth.resample(np.zeros(0, dtype=np.float32), 22050, 8000)) == 0


def test_resample_rejects_bad_rates():
    with pytest.raises(ValueError):
        synth.resample(np.zeros(10, dtype=np.float32), 0, 8000)


@pytest.mark.parametrize("color", synth.NOISE_COLORS)
@pytest.mark.parametrize("level", [-20, -50])
def test_noise_level_is_a_sines_rms(color, level):
    noise = synth.noise(color, level, 16000, 16000, seed=1)
    assert noise.dtype == np.float64 and len(noise) == 16000
    assert peak_dbfs_from_rms(synth.to_int16(noise)) == pytest.approx(level, abs=0.1)


def band_power(x: NDArray[np.float64], rate: int, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].sum())


@pytest.mark.parametrize(("color", "per_octave_db"), [("white", 3.0), ("pink", 0.0), ("brown", -3.0)])
def test_noise_colors_by_power_per_octave(color, per_octave_db):
    x = synth.noise(color, -20, 64000, 16000, seed=2)
    # White noise has as much power per Hz everywhere, so each octave holds twice (+3 dB) the one below it.
    ratio = 10 * math.log10(band_power(x, 16000, 2000, 4000) / band_power(x, 16000, 1000, 2000))
    assert ratio == pytest.approx(per_octave_db, abs=0.5)
    assert band_power(x, 16000, 0, 90) == pytest.approx(0, abs=1e-9)  # nothing below the phone band


def test_noise_is_seeded_and_checks_its_arguments():
    assert np.array_equal(synth.noise("pink", -30, 800, 8000, 5), synth.noise("pink", -30, 800, 8000, 5))
    assert not np.array_equal(synth.noise("pink", -30, 800, 8000, 5), synth.noise("pink", -30, 800, 8000, 6))
    with pytest.raises(ValueError, match="noise color must be one of white, pink, brown, got 'blue'"):
        synth.noise("blue", -30, 800, 8000, 5)
    with pytest.raises(ValueError):
        synth.noise("pink", -30, 0, 8000, 5)


def test_peak_gain():
    x = np.array([0.0, -0.25, 0.1])
    assert synth.peak_gain(x, -6.0206) * 0.25 == pytest.approx(0.5, rel=1e-4)
    assert synth.peak_gain(np.zeros(3), -3) == 1.0 and synth.peak_gain(np.zeros(0), -3) == 1.0
