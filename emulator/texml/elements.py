"""The XML of a TeXML document as plain elements that remember where they start.

expat is used rather than ElementTree because it reports each start tag's line and column, which every
TexmlError and warning names. A DOCTYPE is refused: TeXML never needs one, and a DTD could declare entities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.parsers import expat

from emulator.texml.errors import TexmlError, TexmlErrorKind


@dataclass(slots=True)
class Element:
    """One element as expat read it, with the position of its start tag (column counted from 1)."""

    tag: str
    attributes: dict[str, str]
    line: int
    column: int
    children: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # character data directly inside, not in children

    def body(self) -> str:
        return "".join(self.text).strip()

    def all_text(self) -> str:
        return "".join([*self.text, *(child.all_text() for child in self.children)])


def read_elements(source: str | bytes) -> Element:
    """The root element of ``source``; bytes are decoded as their XML declaration says (UTF-8 by default).

    Raises:
        TexmlError: MALFORMED, at expat's line and column, when ``source`` is not well-formed XML.
    """
    # A str is already decoded: encode it as UTF-8 and tell expat so, whatever its declaration says.
    parser = expat.ParserCreate("UTF-8" if isinstance(source, str) else None)
    data = source.encode("utf-8") if isinstance(source, str) else source
    parser.buffer_text = True
    stack: list[Element] = []
    roots: list[Element] = []

    def start(tag: str, attributes: dict[str, str]) -> None:
        element = Element(tag, attributes, parser.CurrentLineNumber, parser.CurrentColumnNumber + 1)
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(tag: str) -> None:
        stack.pop()

    def characters(data: str) -> None:
        if stack:
            stack[-1].text.append(data)

    def refuse_doctype(*_: object) -> None:
        # A DTD could declare entities that expand without bound; TeXML never needs one.
        raise TexmlError(
            TexmlErrorKind.MALFORMED,
            "a DOCTYPE declaration is not allowed in TeXML",
            line=parser.CurrentLineNumber,
            column=parser.CurrentColumnNumber + 1,
        )

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    parser.StartDoctypeDeclHandler = refuse_doctype
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise TexmlError(
            TexmlErrorKind.MALFORMED,
            f"malformed XML: {expat.ErrorString(exc.code)}",
            line=exc.lineno,
            column=exc.offset + 1,
        ) from None
    return roots[0]  # expat refuses a document without a root element
