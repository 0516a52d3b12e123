"""The fault routes of the OpenAPI document (``emulator/api/faults.py``; docs/faults.md).

Kept apart from ``openapi.py``, as the queue routes are; it passes its operation builder in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.api.openapi_components import envelope


def _data(schema: dict[str, Any]) -> dict[str, Any]:
    return envelope(schema)


def fault_paths(
    operation: Callable[..., dict[str, Any]], tag: str, path_parameter: Callable[[str, str], dict[str, Any]]
) -> dict[str, Any]:
    return {
        "/_emulator/faults": {
            "get": operation(
                "listFaultRules",
                "The namespace's fault rules, with how often each matched and fired",
                tag,
                (200, "Oldest first", _data({"type": "array", "items": {"type": "object"}})),
                (),
            ),
            "post": operation(
                "addFaultRule",
                "Add a fault rule (docs/faults.md)",
                tag,
                (201, "The rule, with its id", _data({"type": "object"})),
                (400, 422),
                body="FaultRule",
            ),
            "delete": operation(
                "deleteFaultRules",
                "Delete every fault rule of the namespace",
                tag,
                (200, "How many were deleted", _data({"type": "object"})),
                (),
            ),
        },
        "/_emulator/faults/injected": {
            "get": operation(
                "listInjectedFaults",
                "The faults injected so far, the latest last",
                tag,
                (200, "Oldest first", _data({"type": "array", "items": {"type": "object"}})),
                (),
            )
        },
        "/_emulator/faults/{rule_id}": {
            "delete": operation(
                "deleteFaultRule",
                "Delete one fault rule",
                tag,
                (200, "The rule deleted", _data({"type": "object"})),
                (404,),
                parameters=[path_parameter("rule_id", "The rule's id, e.g. flt_1")],
            )
        },
    }
