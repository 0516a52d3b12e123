"""The query filters of the control plane's lists: calls, the webhook log and the REST journal.

``?state=answered&is_alive=true``: an item is listed when it matches every parameter; an unknown parameter
or a value a filter cannot read is a 400 in Telnyx's envelope, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request

from emulator.calls.models import CallState, Direction
from emulator.errors import ApiError, Problem

# The filters of each list: query parameter -> does an item match the parameter's value.
Filter = Callable[[Any, str], bool]
WEBHOOK_FILTERS: dict[str, Filter] = {
    "event_type": lambda attempt, value: attempt.event_type == value,
    "call_control_id": lambda attempt, value: attempt.call_control_id == value,
    "status": lambda attempt, value: _status_matches(attempt.status, value),
}
CALL_FILTERS: dict[str, Filter] = {
    "is_alive": lambda call, value: call.is_alive == (value == "true"),
    "state": lambda call, value: call.state.value == value,
    "direction": lambda call, value: call.direction.value == value,
}
COMMAND_FILTERS: dict[str, Filter] = {
    "call_control_id": lambda entry, value: entry.call_control_id == value,
    "method": lambda entry, value: entry.method == value.upper(),
    "status": lambda entry, value: _status_matches(entry.status, value),
}

# The values a parameter can take where they are few: any other is a mistake (``state=answred`` would list
# nothing, and the user would believe no call was answered).
_STATUS_HELP = "an HTTP status (422) or a class (4xx)"
_STATES = tuple(state.value for state in CallState)
_DIRECTIONS = tuple(direction.value for direction in Direction)
_CHOICES: dict[str, tuple[Callable[[str], bool], str]] = {
    "status": (lambda value: len(value) == 3 and (value.isdigit() or value[1:].lower() == "xx"), _STATUS_HELP),
    "is_alive": (lambda value: value in ("true", "false"), "true or false"),
    "state": (lambda value: value in _STATES, " or ".join(_STATES)),
    "direction": (lambda value: value in _DIRECTIONS, " or ".join(_DIRECTIONS)),
}


def _status_matches(status: int | None, wanted: str) -> bool:
    """``422`` matches that status, ``4xx`` any of its class."""
    if status is None:
        return False
    if len(wanted) == 3 and wanted[1:].lower() == "xx":
        return str(status)[0] == wanted[0]
    return str(status) == wanted


def filtered(
    request: Request, items: Iterable[Any], filters: dict[str, Filter], options: tuple[str, ...] = ()
) -> list[Any]:
    """The items that match every filter of the query; an unknown parameter or value is a 400. ``options``: the
    other parameters the list takes (its caller reads them)."""
    wanted = [(name, value) for name, value in request.query_params.multi_items() if name not in options]
    for name, value in wanted:
        if name not in filters:
            detail = f"Unknown filter {name!r}; this list takes: {', '.join((*filters, *options))}."
            raise ApiError(400, [Problem("10015", "Invalid filter", detail, None)])
        valid, expected = _CHOICES.get(name, (None, ""))
        if valid is not None and not valid(value):
            detail = f"{name}: expected {expected}, got {value!r}."
            raise ApiError(400, [Problem("10015", "Invalid filter", detail, None)])
    return [item for item in items if all(filters[name](item, value) for name, value in wanted)]
