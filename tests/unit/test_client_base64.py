"""Media payloads: line-wrapped base64 is base64; anything else outside the alphabet is not."""

from __future__ import annotations

import base64
import json

import pytest

from emulator.media.frames import ClientMedia, FrameProblem, parse_client_frame

AUDIO = bytes(range(256)) * 4


def media(payload: str) -> str:
    return json.dumps({"event": "media", "media": {"payload": payload}})


@pytest.mark.parametrize(
    "payload",
    [
        base64.encodebytes(AUDIO).decode(),  # a newline every 76 characters and at the end
        base64.encodebytes(AUDIO).decode().replace("\n", "\r\n"),
        " \t" + base64.b64encode(AUDIO).decode() + "\n",
    ],
)
def test_whitespace_inside_base64_is_ignored(payload):
    assert parse_client_frame(media(payload)) == ClientMedia(AUDIO)


@pytest.mark.parametrize("junk", ["-", "_", "\u00a0", "\v", "!", "\x00"])
def test_other_characters_are_still_invalid_media(junk):
    encoded = base64.b64encode(AUDIO).decode()
    problem = parse_client_frame(media(encoded[:40] + junk + encoded[40:]))
    assert isinstance(problem, FrameProblem) and problem.code == 100004
