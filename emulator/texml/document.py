"""Parsing a TeXML document into the typed tree of ``emulator.texml.verbs``.

Pure: bytes or str in, ``Document`` out, or one ``TexmlError`` naming the line, column, element and attribute of
the first thing that cannot run.

Where each element may stand (names are case-sensitive, as in TwiML; Telnyx's docs only ever capitalise them)::

    Response   Say Play Pause Gather Record Hangup Reject Redirect Dial Connect Start Stop
    Gather     Say Play Pause            (Telnyx documents Say and Play; TwiML allows Pause too)
    Dial       a number as its body, or Number nouns
    Connect, Start, Stop    exactly one Stream
    Stream     Parameter

Other TeXML verbs and nouns (Enqueue, Conference, Sip, ConversationRelay, ...) raise UNSUPPORTED_VERB, so an app
author can tell "the emulator does not run this yet" from "this is not TeXML". What the parser lets pass but an
author should hear about (unknown attributes, out-of-range numbers, stray text, unreachable verbs) is collected
on ``Document.warnings``; see ``emulator/texml/attributes.py`` for the attribute rules.

Reference: https://developers.telnyx.com/docs/voice/programmable-voice/texml-verbs
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, NoReturn

from emulator.texml import attributes as attrs
from emulator.texml.elements import Element, read_elements
from emulator.texml.errors import TexmlError, TexmlErrorKind, position
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

# Real TeXML elements the emulator does not run: refused with their own kind, not as unknown.
UNSUPPORTED = frozenset(
    {
        "AIAssistant",
        "AIGather",
        "Conference",
        "ConversationRelay",
        "Enqueue",
        "HttpRequest",
        "Leave",
        "Queue",
        "Recording",
        "Refer",
        "Sip",
        "Siprec",
        "Suppression",
        "Transcription",
    }
)

# Where each element the emulator runs belongs, for the message when one stands elsewhere.
_HOME = {
    "Say": "<Response> or <Gather>",
    "Play": "<Response> or <Gather>",
    "Pause": "<Response> or <Gather>",
    "Gather": "<Response>",
    "Record": "<Response>",
    "Hangup": "<Response>",
    "Reject": "<Response>",
    "Redirect": "<Response>",
    "Dial": "<Response>",
    "Connect": "<Response>",
    "Start": "<Response>",
    "Stop": "<Response>",
    "Number": "<Dial>",
    "Stream": "<Connect>, <Start> or <Stop>",
    "Parameter": "<Stream>",
}
_KNOWN_BY_LOWER = {name.lower(): name for name in ["Response", *_HOME, *UNSUPPORTED]}
_ENDS_THE_DOCUMENT = (Hangup, Reject, Redirect)  # nothing after these runs

_NOTHING: frozenset[str] = frozenset()


def parse_texml(source: str | bytes) -> Document:
    """The document's verbs, typed, with Telnyx's defaults filled in.

    Raises:
        TexmlError: the document is malformed, or names an unknown or misplaced element or a bad value.
    """
    root = read_elements(source)
    warnings: list[str] = []
    if root.tag != "Response":
        _refuse(root, "as the root", frozenset({"Response"}))
    _read(root, {}, warnings)  # <Response> takes no attributes: any given only warn
    _ignore_text(root, warnings)
    verbs: list[Verb] = []
    for child in root.children:
        _admit(child, "Response", _BUILDERS.keys())
        verbs.append(_BUILDERS[child.tag](child, warnings))
    for verb, following in zip(verbs, root.children[1:], strict=False):
        if isinstance(verb, _ENDS_THE_DOCUMENT):
            warnings.append(
                f"{position(following.line, following.column)}: <{following.tag}> never runs: "
                f"<{type(verb).__name__}> on line {verb.line} ends the document"
            )
            break
    return Document(verbs=tuple(verbs), warnings=tuple(warnings))


def _admit(element: Element, parent: str, allowed: Collection[str]) -> None:
    if element.tag not in allowed:
        _refuse(element, f"in <{parent}>", allowed)


def _refuse(element: Element, place: str, allowed: Collection[str]) -> NoReturn:
    tag = element.tag
    if tag == "Response":
        kind, detail = TexmlErrorKind.MISPLACED, f"not allowed {place}; <Response> is only ever the root"
    elif tag in _HOME:
        kind, detail = TexmlErrorKind.MISPLACED, f"not allowed {place}; it belongs in {_HOME[tag]}"
    elif tag in UNSUPPORTED:
        kind, detail = TexmlErrorKind.UNSUPPORTED_VERB, "a TeXML element the emulator does not run"
    elif (known := _KNOWN_BY_LOWER.get(tag.lower())) is not None:
        kind, detail = TexmlErrorKind.UNKNOWN_VERB, f"unknown; did you mean <{known}>? TeXML names are case-sensitive"
    else:
        expected = ", ".join(f"<{name}>" for name in sorted(allowed)) or "no elements"
        kind, detail = TexmlErrorKind.UNKNOWN_VERB, f"not a TeXML verb or noun (allowed {place}: {expected})"
    raise TexmlError(kind, detail, line=element.line, column=element.column, element=tag)


def _read(
    element: Element, spec: attrs.Spec, warnings: list[str], ignored: Collection[str] = _NOTHING
) -> dict[str, Any]:
    return attrs.read_attributes(
        element.tag,
        element.attributes,
        spec,
        line=element.line,
        column=element.column,
        warnings=warnings,
        ignored=ignored,
    )


def _leaf(element: Element) -> None:
    """Refuse any element inside ``element``, which takes only attributes (and maybe a body)."""
    for child in element.children:
        _admit(child, element.tag, _NOTHING)


def _ignore_text(element: Element, warnings: list[str]) -> None:
    if element.body():
        warnings.append(f"{position(element.line, element.column)}: <{element.tag}>: text inside it is ignored")


def _missing(element: Element, detail: str, attribute: str | None = None) -> TexmlError:
    return TexmlError(
        TexmlErrorKind.MISSING_VALUE,
        detail,
        line=element.line,
        column=element.column,
        element=element.tag,
        attribute=attribute,
    )


def _say(element: Element, warnings: list[str]) -> Say:
    values = _read(element, attrs.SAY, warnings, attrs.SAY_IGNORED)
    where = f"{position(element.line, element.column)}: <Say>"
    if element.children:
        # SSML such as <break/> or <prosody> is common in TwiML apps: speak its words rather than refuse them.
        warnings.append(f"{where}: markup inside it (<{element.children[0].tag}>) is read as plain text")
    text = " ".join(element.all_text().split())
    if not text:
        warnings.append(f"{where}: it has no text, so it says nothing")
    return Say(text=text, line=element.line, **values)


def _play(element: Element, warnings: list[str]) -> Play:
    _leaf(element)
    values = _read(element, attrs.PLAY, warnings)
    body = element.body() or None
    if body and "ring_tone" in values:
        raise TexmlError(
            TexmlErrorKind.BAD_ATTRIBUTE,
            "cannot be combined with an audio URL in the body",
            line=element.line,
            column=element.column,
            element="Play",
            attribute="ringTone",
        )
    if not body and "digits" not in values and "ring_tone" not in values:
        raise _missing(element, "needs an audio URL in its body, digits or ringTone")
    if body and "digits" in values:
        warnings.append(f"{position(element.line, element.column)}: <Play>: digits play instead of {body}")
    return Play(url=body, line=element.line, **values)


def _pause(element: Element, warnings: list[str]) -> Pause:
    _leaf(element)
    _ignore_text(element, warnings)
    return Pause(line=element.line, **_read(element, attrs.PAUSE, warnings))


_IN_GATHER: dict[str, Callable[[Element, list[str]], Say | Play | Pause]] = {
    "Say": _say,
    "Play": _play,
    "Pause": _pause,
}


def _gather(element: Element, warnings: list[str]) -> Gather:
    values = _read(element, attrs.GATHER, warnings, attrs.GATHER_IGNORED)
    low, high = values.get("min_digits", 1), values.get("max_digits", 128)
    if low > high:
        raise TexmlError(
            TexmlErrorKind.BAD_ATTRIBUTE,
            f"{low} is more than maxDigits ({high})",
            line=element.line,
            column=element.column,
            element="Gather",
            attribute="minDigits",
        )
    _ignore_text(element, warnings)
    children = []
    for child in element.children:
        _admit(child, "Gather", _IN_GATHER.keys())
        children.append(_IN_GATHER[child.tag](child, warnings))
    return Gather(children=tuple(children), line=element.line, **values)


def _record(element: Element, warnings: list[str]) -> Record:
    _leaf(element)
    _ignore_text(element, warnings)
    return Record(line=element.line, **_read(element, attrs.RECORD, warnings, attrs.RECORD_IGNORED))


def _hangup(element: Element, warnings: list[str]) -> Hangup:
    _leaf(element)
    _ignore_text(element, warnings)
    _read(element, {}, warnings)
    return Hangup(line=element.line)


def _reject(element: Element, warnings: list[str]) -> Reject:
    _leaf(element)
    _ignore_text(element, warnings)
    return Reject(line=element.line, **_read(element, attrs.REJECT, warnings))


def _redirect(element: Element, warnings: list[str]) -> Redirect:
    _leaf(element)
    values = _read(element, attrs.REDIRECT, warnings)
    if not element.body():
        raise _missing(element, "needs the URL to fetch in its body")
    return Redirect(url=element.body(), line=element.line, **values)


def _number(element: Element, warnings: list[str]) -> Number:
    _leaf(element)
    values = _read(element, attrs.NUMBER, warnings, attrs.NUMBER_IGNORED)
    if not element.body():
        raise _missing(element, "needs the number to call in its body")
    return Number(number=element.body(), line=element.line, **values)


def _dial(element: Element, warnings: list[str]) -> Dial:
    values = _read(element, attrs.DIAL, warnings, attrs.DIAL_IGNORED)
    numbers = []
    for child in element.children:
        _admit(child, "Dial", {"Number"})
        numbers.append(_number(child, warnings))
    if numbers and element.body():
        raise TexmlError(
            TexmlErrorKind.MISPLACED,
            f"has both a number in its body ({element.body()}) and <Number> nouns; use one or the other",
            line=element.line,
            column=element.column,
            element="Dial",
        )
    if element.body():
        numbers = [Number(number=element.body(), line=element.line)]
    if not numbers:
        raise _missing(element, "needs a number to call, in its body or in <Number>")
    return Dial(numbers=tuple(numbers), line=element.line, **values)


def _stream(element: Element, warnings: list[str], *, needs_url: bool) -> Stream:
    values = _read(element, attrs.STREAM, warnings)
    if needs_url and "url" not in values:
        raise _missing(element, "is required", attribute="url")
    _ignore_text(element, warnings)
    parameters = []
    for child in element.children:
        _admit(child, "Stream", {"Parameter"})
        parameters.append(_parameter(child, warnings))
    return Stream(parameters=tuple(parameters), line=element.line, **values)


def _parameter(element: Element, warnings: list[str]) -> Parameter:
    _leaf(element)
    _ignore_text(element, warnings)
    values = _read(element, attrs.PARAMETER, warnings)
    if not values.get("name"):
        raise _missing(element, "is required", attribute="name")
    return Parameter(line=element.line, **values)


def _the_stream(element: Element, warnings: list[str]) -> Stream:
    """The single <Stream> inside <Connect>, <Start> or <Stop>."""
    _read(element, {}, warnings)
    _ignore_text(element, warnings)
    for child in element.children:
        _admit(child, element.tag, {"Stream"})
    if not element.children:
        raise _missing(element, "needs a <Stream> inside it")
    if len(element.children) > 1:
        extra = element.children[1]
        raise TexmlError(
            TexmlErrorKind.MISPLACED,
            f"a second noun in <{element.tag}>, which takes exactly one",
            line=extra.line,
            column=extra.column,
            element=extra.tag,
        )
    return _stream(element.children[0], warnings, needs_url=element.tag != "Stop")


def _connect(element: Element, warnings: list[str]) -> Connect:
    return Connect(stream=_the_stream(element, warnings), line=element.line)


def _start(element: Element, warnings: list[str]) -> Start:
    return Start(stream=_the_stream(element, warnings), line=element.line)


def _stop(element: Element, warnings: list[str]) -> Stop:
    return Stop(stream=_the_stream(element, warnings), line=element.line)


_BUILDERS: dict[str, Callable[[Element, list[str]], Verb]] = {
    "Say": _say,
    "Play": _play,
    "Pause": _pause,
    "Gather": _gather,
    "Record": _record,
    "Hangup": _hangup,
    "Reject": _reject,
    "Redirect": _redirect,
    "Dial": _dial,
    "Connect": _connect,
    "Start": _start,
    "Stop": _stop,
}
