from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from emulator.media import codecs
from emulator.media.app_audio import AppAudioDecoder, MediaRejected
from emulator.media.frames import ClientClear, ClientMark, ClientMedia, FrameProblem, parse_client_frame


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('{"event":"media","media":{"payload":"AAEC"}}', ClientMedia(b"\x00\x01\x02")),
        ('{"event":"media","stream_id":"x","media":{"payload":""}}', ClientMedia(b"")),
        ('{"event":"mark","mark":{"name":"m1"}}', ClientMark("m1")),
        ('{"event":"clear"}', ClientClear()),
    ],
)
def test_valid_client_frames(message, expected):
    assert parse_client_frame(message) == expected


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", 100003),
        (b"\x00\x01", 100003),
        ("[]", 100003),
        ('{"media":{}}', 100003),
        ('{"event":"media"}', 100003),
        ('{"event":"media","media":{"payload":5}}', 100003),
        ('{"event":"media","media":{"payload":"not base64!"}}', 100004),
        ('{"event":"mark","mark":{}}', 100003),
        ('{"event":"dance"}', 100003),
    ],
)
def test_bad_client_frames_name_the_telnyx_error_code(message, code):
    problem = parse_client_frame(message)
    assert isinstance(problem, FrameProblem) and problem.code == code and problem.detail


def test_rtp_l16_is_decoded_at_its_rate_and_resampled_to_the_stream():
    decoder = AppAudioDecoder("rtp", "L16", 16000, stream_rate=8000)
    original = (np.arange(320) * 50).astype(np.int16)
    audio = decoder.decode(codecs.encode_l16(original))
    assert np.array_equal(audio.original, original) and len(audio.pcm) == 160


@pytest.mark.parametrize(("samples", "ok"), [(159, False), (160, True), (8000 * 30, True), (8000 * 30 + 8, False)])
def test_rtp_chunks_must_hold_20_ms_to_30_s(samples, ok):
    decoder = AppAudioDecoder("rtp", "PCMU", 8000, stream_rate=8000)
    payload = codecs.encode_ulaw(np.zeros(samples, dtype=np.int16))
    if ok:
        assert len(decoder.decode(payload).pcm) == samples
    else:
        with pytest.raises(MediaRejected, match="chunks must be 20 ms to 30 s"):
            decoder.decode(payload)


def test_mp3_mode_decodes_a_file_and_explains_raw_audio():
    soundfile = pytest.importorskip("soundfile")
    buffer = io.BytesIO()
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)).astype(np.float32)
    soundfile.write(buffer, tone, 16000, format="MP3")
    decoder = AppAudioDecoder("mp3", "PCMU", 8000, stream_rate=8000)
    audio = decoder.decode(buffer.getvalue())
    assert 3900 <= len(audio.pcm) <= 4600  # ~0.5 s at 8 kHz, give or take the MP3 padding
    with pytest.raises(MediaRejected, match="stream_bidirectional_mode rtp"):
        decoder.decode(base64.b64decode("AAAA") * 100)
