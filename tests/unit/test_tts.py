"""emulator.scenarios.tts: the speech cache (bundle, user cache, synthesis), its keys, and espeak-ng itself."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from emulator.scenarios import synth, tts
from emulator.scenarios.tts import SpeechCache, SpeechError, Voice
from tests.unit.test_synth import fft_peak_hz

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def fake_speech(calls=None, hz=300.0):
    """A synthesizer that 'speaks' a tone, 40 ms per character, with silence around it as espeak-ng has."""

    def synthesize(text, voice):
        if calls is not None:
            calls.append((text, voice))
        rate = 22050
        body = synth.tone(hz, 40 * len(text), -6, rate).astype(np.float32) / 32768
        pad = np.zeros(rate // 10, dtype=np.float32)
        return np.concatenate([pad, body, pad]), rate

    return synthesize


def refuse(text, voice):
    raise AssertionError(f"synthesized {text!r}: should have come from a cache")


def test_key_depends_on_text_voice_rate_and_pitch_only():
    base = tts.key("Hello", Voice())
    assert len(base) == 20 and base == tts.key("Hello", Voice("en-us", 160, 50))
    others = {tts.key("Hello!", Voice()), tts.key("Hello", Voice("en-gb")), tts.key("Hello", Voice(wpm=161))}
    others.add(tts.key("Hello", Voice(pitch=51)))
    assert base not in others and len(others) == 4
    # Pinned: the shipped scenarios' bundled speech is found by these keys.
    assert tts.key("And do I need an appointment?", Voice()) == "246d4ad558d6f0038fb8"


def test_synthesizes_once_then_reads_the_user_cache(tmp_path):
    calls = []
    first = SpeechCache(tmp_path / "cache", fake_speech(calls)).get("Hello there", Voice())
    assert calls == [("Hello there", Voice())] and first.origin == "espeak-ng"
    stored = tmp_path / "cache" / f"{tts.key('Hello there', Voice())}.flac"
    info = sf.info(stored)
    assert (info.samplerate, info.channels, info.format, info.subtype) == (16000, 1, "FLAC", "PCM_16")
    assert oct(stored.stat().st_mode & 0o777) == "0o644"
    again = SpeechCache(tmp_path / "cache", refuse).get("Hello there", Voice())
    assert again.origin == "cache"
    assert np.array_equal(again.samples, first.samples)  # the first run sounds exactly like every later one
    assert not again.samples.flags.writeable


def test_stored_speech_is_trimmed_and_at_16k(tmp_path):
    speech = SpeechCache(None, fake_speech()).get("abcde", Voice())  # 200 ms of tone between 100 ms silences
    assert speech.sample_rate == 16000
    assert len(speech.samples) == pytest.approx(3200, abs=16)
    assert abs(speech.samples[0]) < 0.02 and np.abs(speech.samples[:80]).max() > 0  # starts where the sound does
    assert fft_peak_hz(speech.samples, 16000) == pytest.approx(300, abs=2)


def test_bundle_wins_and_bundle_writes_it(tmp_path):
    bundle_dir = tmp_path / "audio" / "tts"
    maker = SpeechCache(tmp_path / "cache", fake_speech(hz=400))
    path = maker.bundle("Hi", Voice(), bundle_dir)
    assert path == bundle_dir / f"{tts.key('Hi', Voice())}.flac" and path.is_file()
    SpeechCache(tmp_path / "cache2", fake_speech(hz=900)).get("Hi", Voice())  # a different copy in a user cache
    found = SpeechCache(tmp_path / "cache2", refuse).get("Hi", Voice(), bundle_dir)
    assert found.origin == "bundle" and fft_peak_hz(found.samples, 16000) == pytest.approx(400, abs=5)
    assert maker.bundle("Hi", Voice(), bundle_dir) == path  # already there: left alone


def test_memory_memo_without_a_cache_dir():
    calls = []
    cache = SpeechCache(None, fake_speech(calls))
    assert cache.get("x", Voice()) is cache.get("x", Voice())
    assert len(calls) == 1


def test_an_unwritable_cache_only_costs_a_resynthesis(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    speech = SpeechCache(blocker / "cache", fake_speech()).get("Hello", Voice())
    assert speech.origin == "espeak-ng" and len(speech.samples)


def test_inaudible_speech_is_an_error():
    cache = SpeechCache(None, lambda text, voice: (np.zeros(1000, dtype=np.float32), 22050))
    with pytest.raises(SpeechError, match="^espeak-ng produced no audible speech for this text$"):
        cache.get("...", Voice())


def test_missing_espeak_names_the_package():
    with pytest.raises(SpeechError) as info:
        tts.espeak("Hello", Voice(), executable="no-such-espeak-ng-here")
    assert str(info.value) == (
        "cannot synthesize speech: espeak-ng is not installed "
        "(install the espeak-ng package: apt-get install espeak-ng, or brew install espeak-ng)"
    )
    assert info.value.field == "text"


def test_default_cache_dir_follows_the_environment(tmp_path):
    assert tts.default_cache_dir({"TELNYX_EMULATOR_TTS_CACHE": str(tmp_path)}) == tmp_path
    assert tts.default_cache_dir({"XDG_CACHE_HOME": "/c"}).as_posix() == "/c/telnyx-emulator/tts"
    assert tts.default_cache_dir({}).parts[-3:] == (".cache", "telnyx-emulator", "tts")


@needs_espeak
def test_espeak_speaks_and_is_deterministic(tmp_path):
    samples, rate = tts.espeak("-Hello, world.", Voice())  # a leading dash is text, not an option
    assert rate == 22050 and 0.5 < len(samples) / rate < 3
    again, _ = tts.espeak("-Hello, world.", Voice())
    assert np.array_equal(samples, again)
    faster, _ = tts.espeak("-Hello, world.", Voice(wpm=300))
    assert len(faster) < len(samples)


@needs_espeak
def test_espeak_unknown_voice_blames_the_voice_field():
    with pytest.raises(SpeechError) as info:
        tts.espeak("Hello", Voice("xx-nope"))
    assert str(info.value) == "espeak-ng has no voice 'xx-nope'" and info.value.field == "voice"
