"""AppAudioDecoder: what it refuses, and that refusing leaves nothing behind."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from emulator.media import codecs
from emulator.media.app_audio import AppAudioDecoder, MediaRejected


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def test_a_rejected_g722_chunk_leaves_the_decoder_state_untouched():
    encoded = codecs.encode("G722", tone(0.8, 16000))
    first, second = encoded[:3200], encoded[3200:]  # 400 ms each (8000 bytes per second)
    decoder = AppAudioDecoder("rtp", "G722", 8000, stream_rate=16000)
    played = [decoder.decode(first).original]
    with pytest.raises(MediaRejected, match="20 ms to 30 s"):
        decoder.decode(second[:80])  # 10 ms: too short, must not be decoded at all
    played.append(decoder.decode(second).original)
    assert np.concatenate(played).tobytes() == codecs.decode("G722", encoded).tobytes()


@pytest.mark.parametrize(
    ("codec", "rate", "bytes_per_20_ms"), [("PCMA", 8000, 160), ("G722", 8000, 160), ("L16", 48000, 1920)]
)
def test_chunk_length_is_checked_from_the_payload_size(codec, rate, bytes_per_20_ms):
    decoder = AppAudioDecoder("rtp", codec, rate, stream_rate=8000)
    assert len(decoder.decode(bytes(bytes_per_20_ms)).pcm) == 160
    with pytest.raises(MediaRejected, match="20 ms to 30 s"):
        decoder.decode(bytes(bytes_per_20_ms - 2))
    with pytest.raises(MediaRejected, match="20 ms to 30 s"):
        decoder.decode(bytes(bytes_per_20_ms * 1500 + 2))


def encoded_as(audio_format: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(8000, dtype=np.float32), 8000, format=audio_format)
    return buffer.getvalue()


@pytest.mark.parametrize("audio_format", ["WAV", "FLAC", "OGG"])
def test_mp3_mode_refuses_other_audio_formats_by_name(audio_format):
    decoder = AppAudioDecoder("mp3", "PCMU", 8000, stream_rate=8000)
    with pytest.raises(MediaRejected) as caught:
        decoder.decode(encoded_as(audio_format))
    detail = caught.value.problem.detail
    assert f"is a {audio_format} file, not MP3" in detail and "stream_bidirectional_mode rtp" in detail


@pytest.mark.parametrize("payload", [b"\xff\x7f" * 400, b"", b"ID3 but nothing after"])
def test_mp3_errors_do_not_quote_python_objects(payload):
    decoder = AppAudioDecoder("mp3", "PCMU", 8000, stream_rate=8000)
    with pytest.raises(MediaRejected) as caught:
        decoder.decode(payload)
    detail = caught.value.problem.detail
    assert detail.startswith("Media payload is not an MP3 file") and "<" not in detail and "0x" not in detail
