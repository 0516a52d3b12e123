"""TeXML, Telnyx's XML call scripts: the documents and their typed verbs (pure; the executor lives elsewhere)."""

from __future__ import annotations

from emulator.texml.document import parse_texml
from emulator.texml.errors import TexmlError, TexmlErrorKind
from emulator.texml.verbs import (
    Connect,
    Dial,
    Document,
    Gather,
    Hangup,
    Number,
    Parameter,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    Start,
    Stop,
    Stream,
    Verb,
)

__all__ = [
    "Connect",
    "Dial",
    "Document",
    "Gather",
    "Hangup",
    "Number",
    "Parameter",
    "Pause",
    "Play",
    "Record",
    "Redirect",
    "Reject",
    "Say",
    "Start",
    "Stop",
    "Stream",
    "TexmlError",
    "TexmlErrorKind",
    "Verb",
    "parse_texml",
]
