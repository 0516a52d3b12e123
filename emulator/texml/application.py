"""A TeXML application: where a TeXML call's document comes from and where its status goes (pure).

One per namespace (``PUT /_emulator/texml``, or ``--texml-url`` for every namespace), or one per call
(``POST /_emulator/calls`` with ``texml_url`` or ``texml``; ``POST /v2/texml/Accounts/{sid}/Calls`` with ``Url`` or
``Texml``). A "TeXML bin" is an application whose document is given, not fetched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class TexmlApplication:
    voice_url: str | None = None
    voice_method: str = "POST"  # GET or POST
    voice_fallback_url: str | None = None
    status_callback: str | None = None  # told when the call ends (CallStatus=completed)
    status_callback_method: str = "POST"
    document: str | None = None  # a TeXML bin: the document itself, run with no fetch

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def overridden(self, **changes: Any) -> TexmlApplication:
        """This application with the fields given (not None) replaced: a call's own settings over its app's."""
        given = {name: value for name, value in changes.items() if value is not None}
        if "document" in given:
            given.setdefault("voice_url", None)
        elif "voice_url" in given:
            given.setdefault("document", None)
        return replace(self, **given)
