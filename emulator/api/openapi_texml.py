"""TeXML's routes in the OpenAPI document (``api/texml.py``; docs/texml.md).

Kept apart from ``openapi.py``, as the fault and queue routes are; it passes its builders in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Request bodies: schemas/<stem>.schema.json, named in components/schemas.
TEXML_REQUEST_SCHEMAS = {"texml_application": "TexmlApplication", "texml_call": "InitiateTexmlCallRequest"}

_APPLICATION = {
    "type": "object",
    "properties": {
        "data": {
            "type": "object",
            "properties": {
                name: {"type": ["string", "null"]}
                for name in (
                    "voice_url",
                    "voice_method",
                    "voice_fallback_url",
                    "status_callback",
                    "status_callback_method",
                    "document",
                )
            },
        }
    },
    "required": ["data"],
}
_CALL_RESULT = {
    "type": "object",
    "description": "As Telnyx answers (not wrapped in data), with the new call's call_sid (its call_control_id)",
    "properties": {name: {"type": "string"} for name in ("call_sid", "from", "to", "status")},
    "required": ["call_sid", "from", "to", "status"],
}


def texml_paths(
    operation: Callable[..., dict[str, Any]], tag: str, control: str, path_parameter: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    def start(operation_id: str, parameter: dict[str, Any]) -> dict[str, Any]:
        return operation(
            operation_id,
            "Dial a number; when it answers, run the call's TeXML (Url, Texml, or the TeXML application's)",
            tag,
            (200, "The call is queued", _CALL_RESULT),
            (400, 422),
            body="InitiateTexmlCallRequest",
            parameters=[parameter],
        )

    deleted = operation(
        "deleteTexmlApplication", "Forget the namespace's TeXML application", control, (204, "", {}), ()
    )
    deleted["responses"]["204"].pop("content")
    return {
        "/_emulator/texml": {
            "get": operation(
                "getTexmlApplication", "The namespace's TeXML application", control, (200, "It", _APPLICATION), (404,)
            ),
            "put": operation(
                "setTexmlApplication",
                "Set the namespace's TeXML application: where its TeXML calls' documents come from",
                control,
                (200, "It", _APPLICATION),
                (400, 422),
                body="TexmlApplication",
            ),
            "delete": deleted,
        },
        "/v2/texml/Accounts/{account_sid}/Calls": {
            "post": start("initiateTexmlCall", path_parameter("account_sid", "Your account's id (any here)"))
        },
        "/v2/texml/calls/{application_id}": {
            "post": start("initiateTexmlCallByApplication", path_parameter("application_id", "The TeXML application"))
        },
    }
