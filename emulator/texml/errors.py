"""TexmlError: why a TeXML document cannot run, and where in it.

Every message starts with the position of the element at fault (expat gives the start tag's position, not the
attribute's), then names the element and, when one is at fault, the attribute::

    line 4, column 5: <Gather> attribute 'timeout': expected a whole number, got 'soon'
"""

from __future__ import annotations

import enum

from emulator.errors import EmulatorError


class TexmlErrorKind(enum.StrEnum):
    MALFORMED = "malformed"  # not well-formed XML
    UNKNOWN_VERB = "unknown_verb"  # not a TeXML element at all (or in the wrong case)
    UNSUPPORTED_VERB = "unsupported_verb"  # a TeXML element the emulator does not run
    MISPLACED = "misplaced"  # a known element where TeXML does not allow it
    BAD_ATTRIBUTE = "bad_attribute"  # a value that is not of the attribute's type or set
    MISSING_VALUE = "missing_value"  # a required attribute or body is absent


def position(line: int, column: int) -> str:
    return f"line {line}, column {column}"


class TexmlError(EmulatorError):
    """A document the executor must refuse; ``str(error)`` is the message to report on the call and log."""

    def __init__(
        self,
        kind: TexmlErrorKind,
        detail: str,
        *,
        line: int,
        column: int,
        element: str | None = None,
        attribute: str | None = None,
    ) -> None:
        where = position(line, column)
        if element is not None and attribute is not None:
            message = f"{where}: <{element}> attribute '{attribute}': {detail}"
        elif element is not None:
            message = f"{where}: <{element}>: {detail}"
        else:
            message = f"{where}: {detail}"
        super().__init__(message)
        self.kind = kind
        self.detail = detail
        self.line = line
        self.column = column
        self.element = element
        self.attribute = attribute
