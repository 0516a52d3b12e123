"""Clients of the control plane (``/_emulator/``) for one API key: ``ControlPlane`` and ``AsyncControlPlane``.

Each endpoint is described once, as a ``_Request`` built by a function below; the two clients only
differ in how they send it, so their methods are one line each and cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from emulator.testing.metrics import CallMetrics
from emulator.testing.settings import DEFAULT_TIMEOUT
from emulator.tls import shared_tls_context


class ControlPlaneError(Exception):
    """A control-plane request was answered with an error status; ``errors`` is Telnyx's envelope."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        detail = "; ".join(str(e.get("detail") or e.get("title")) for e in errors) or "no details"
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.errors = errors


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    body: Any = None
    raw: bool = False  # the answer is a file (a WAV recording), not {"data": ...}


def _answer(request: _Request, response: httpx.Response) -> Any:
    if response.is_success:
        return response.content if request.raw else response.json()["data"]
    try:
        errors = response.json()["errors"]
    except (ValueError, KeyError, TypeError):
        errors = [{"title": response.text}]
    raise ControlPlaneError(response.status_code, errors)


def _id(value: str) -> str:
    return quote(value, safe=":")  # call_control_ids hold ':' (v3:...), which paths carry as is


def _health() -> _Request:
    return _Request("GET", "/health")


def _public_key() -> _Request:
    return _Request("GET", "/public-key")


def _incoming_call(from_: str, to: str, fields: dict[str, Any]) -> _Request:
    return _Request("POST", "/calls", {"from": from_, "to": to, **fields})


def _calls() -> _Request:
    return _Request("GET", "/calls")


def _call(call_control_id: str) -> _Request:
    return _Request("GET", f"/calls/{_id(call_control_id)}")


def _metrics(call_control_id: str) -> _Request:
    return _Request("GET", f"/calls/{_id(call_control_id)}/metrics")


def _set_scenario(call_control_id: str, scenario: str) -> _Request:
    return _Request("PUT", f"/calls/{_id(call_control_id)}/scenario", {"scenario": scenario})


def _caller(call_control_id: str, actions: dict[str, Any]) -> _Request:
    """One request per action, in order: the caller plays them one after another (docs/control-plane.md)."""
    body = {name: value for name, value in actions.items() if value is not None and value is not False}
    if len(body) != 1:
        raise TypeError("caller() takes exactly one action: dtmf, say, play, silence_ms or hangup=True")
    return _Request("POST", f"/calls/{_id(call_control_id)}/caller", body)


def _streams() -> _Request:
    return _Request("GET", "/streams")


def _stream(stream_id: str) -> _Request:
    return _Request("GET", f"/streams/{_id(stream_id)}")


def _recording(stream_id: str, track: str) -> _Request:
    return _Request("GET", f"/streams/{_id(stream_id)}/recording/{_id(track)}.wav", raw=True)


def _webhooks() -> _Request:
    return _Request("GET", "/webhooks")


def _commands() -> _Request:
    return _Request("GET", "/commands")


def _reset() -> _Request:
    return _Request("POST", "/reset")


def _seed(seed: int | None) -> _Request:
    return _Request("POST", "/seed", {"seed": seed})


def _add_fault(rule: dict[str, Any]) -> _Request:
    return _Request("POST", "/faults", rule)


def _faults() -> _Request:
    return _Request("GET", "/faults")


def _delete_fault(rule_id: str) -> _Request:
    return _Request("DELETE", f"/faults/{_id(rule_id)}")


def _clear_faults() -> _Request:
    return _Request("DELETE", "/faults")


def _injected_faults() -> _Request:
    return _Request("GET", "/faults/injected")


class ControlPlane:
    """A synchronous client of ``/_emulator/`` for one API key (its namespace). See docs/control-plane.md.

    Every method returns the answer's ``data`` (``recording`` returns the WAV file's bytes) and raises
    ``ControlPlaneError`` for an error answer.
    """

    def __init__(self, url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        # verify=: the process's one TLS context; httpx would load the CA certificates again (~55 ms) for
        # every client, which every test using the fixture would pay.
        self._http = httpx.Client(
            base_url=f"{url}/_emulator", headers=headers, timeout=timeout, verify=shared_tls_context()
        )

    def close(self) -> None:
        self._http.close()

    def _send(self, request: _Request) -> Any:
        return _answer(request, self._http.request(request.method, request.path, json=request.body))

    def health(self) -> dict[str, Any]:
        return dict(self._send(_health()))

    def public_key(self) -> str:
        """The base64 Ed25519 key that verifies webhook signatures (``TELNYX_PUBLIC_KEY``)."""
        return str(self._send(_public_key())["public_key"])

    def incoming_call(self, from_: str, to: str, **fields: Any) -> dict[str, Any]:
        """Ring the app: ``fields`` are ``scenario``, ``webhook_url``, ``client_state``, ``connection_id``."""
        return dict(self._send(_incoming_call(from_, to, fields)))

    def calls(self) -> list[dict[str, Any]]:
        return list(self._send(_calls()))

    def call(self, call_control_id: str) -> dict[str, Any]:
        return dict(self._send(_call(call_control_id)))

    def metrics(self, call_control_id: str) -> CallMetrics:
        """The call's conversation metrics, so far (``is_alive``) or final (docs/metrics.md)."""
        return CallMetrics.from_json(dict(self._send(_metrics(call_control_id))))

    def set_scenario(self, call_control_id: str, scenario: str) -> dict[str, Any]:
        """What the caller of this call says in streams started from now on (a name or a .yaml path)."""
        return dict(self._send(_set_scenario(call_control_id, scenario)))

    def caller(
        self,
        call_control_id: str,
        *,
        dtmf: str | None = None,
        say: str | None = None,
        play: str | None = None,
        silence_ms: int | None = None,
        hangup: bool = False,
    ) -> dict[str, Any]:
        """The caller acts now, one action per call: presses ``dtmf`` keys, says ``say``, plays ``play`` (a URL or a
        file), keeps quiet ``silence_ms``, or hangs up. Returns ``action``, ``at_ms`` and ``duration_ms``."""
        actions = {"dtmf": dtmf, "say": say, "play": play, "silence_ms": silence_ms, "hangup": hangup}
        return dict(self._send(_caller(call_control_id, actions)))

    def streams(self) -> list[dict[str, Any]]:
        return list(self._send(_streams()))

    def stream(self, stream_id: str) -> dict[str, Any]:
        return dict(self._send(_stream(stream_id)))

    def recording(self, stream_id: str, track: str = "inbound") -> bytes:
        """A stream's recording as a 16-bit WAV file: ``inbound``, ``outbound`` or ``app``."""
        return bytes(self._send(_recording(stream_id, track)))

    def webhooks(self) -> list[dict[str, Any]]:
        return list(self._send(_webhooks()))

    def commands(self) -> list[dict[str, Any]]:
        return list(self._send(_commands()))

    def reset(self) -> dict[str, Any]:
        return dict(self._send(_reset()))

    def seed(self, seed: int | None) -> dict[str, Any]:
        return dict(self._send(_seed(seed)))

    def add_fault(self, target: str, kind: str, **fields: Any) -> dict[str, Any]:
        """Add a fault rule (docs/faults.md): ``add_fault("api", "status", status=503, action="speak", times=1)``."""
        return dict(self._send(_add_fault({"target": target, "kind": kind, **fields})))

    def faults(self) -> list[dict[str, Any]]:
        return list(self._send(_faults()))

    def delete_fault(self, rule_id: str) -> dict[str, Any]:
        return dict(self._send(_delete_fault(rule_id)))

    def clear_faults(self) -> int:
        """Delete every fault rule; returns how many there were."""
        return int(self._send(_clear_faults())["deleted"])

    def injected_faults(self) -> list[dict[str, Any]]:
        """The faults injected so far, oldest first: which rule, where, and what it did."""
        return list(self._send(_injected_faults()))


class AsyncControlPlane:
    """``ControlPlane`` for async tests (a short-lived client per request, so any event loop works)."""

    def __init__(self, url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._base = f"{url}/_emulator"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout

    async def _send(self, request: _Request) -> Any:
        async with httpx.AsyncClient(
            base_url=self._base, headers=self._headers, timeout=self._timeout, verify=shared_tls_context()
        ) as http:
            return _answer(request, await http.request(request.method, request.path, json=request.body))

    async def health(self) -> dict[str, Any]:
        return dict(await self._send(_health()))

    async def public_key(self) -> str:
        return str((await self._send(_public_key()))["public_key"])

    async def incoming_call(self, from_: str, to: str, **fields: Any) -> dict[str, Any]:
        return dict(await self._send(_incoming_call(from_, to, fields)))

    async def calls(self) -> list[dict[str, Any]]:
        return list(await self._send(_calls()))

    async def call(self, call_control_id: str) -> dict[str, Any]:
        return dict(await self._send(_call(call_control_id)))

    async def metrics(self, call_control_id: str) -> CallMetrics:
        return CallMetrics.from_json(dict(await self._send(_metrics(call_control_id))))

    async def set_scenario(self, call_control_id: str, scenario: str) -> dict[str, Any]:
        return dict(await self._send(_set_scenario(call_control_id, scenario)))

    async def caller(
        self,
        call_control_id: str,
        *,
        dtmf: str | None = None,
        say: str | None = None,
        play: str | None = None,
        silence_ms: int | None = None,
        hangup: bool = False,
    ) -> dict[str, Any]:
        actions = {"dtmf": dtmf, "say": say, "play": play, "silence_ms": silence_ms, "hangup": hangup}
        return dict(await self._send(_caller(call_control_id, actions)))

    async def streams(self) -> list[dict[str, Any]]:
        return list(await self._send(_streams()))

    async def stream(self, stream_id: str) -> dict[str, Any]:
        return dict(await self._send(_stream(stream_id)))

    async def recording(self, stream_id: str, track: str = "inbound") -> bytes:
        return bytes(await self._send(_recording(stream_id, track)))

    async def webhooks(self) -> list[dict[str, Any]]:
        return list(await self._send(_webhooks()))

    async def commands(self) -> list[dict[str, Any]]:
        return list(await self._send(_commands()))

    async def reset(self) -> dict[str, Any]:
        return dict(await self._send(_reset()))

    async def seed(self, seed: int | None) -> dict[str, Any]:
        return dict(await self._send(_seed(seed)))

    async def add_fault(self, target: str, kind: str, **fields: Any) -> dict[str, Any]:
        return dict(await self._send(_add_fault({"target": target, "kind": kind, **fields})))

    async def faults(self) -> list[dict[str, Any]]:
        return list(await self._send(_faults()))

    async def delete_fault(self, rule_id: str) -> dict[str, Any]:
        return dict(await self._send(_delete_fault(rule_id)))

    async def clear_faults(self) -> int:
        return int((await self._send(_clear_faults()))["deleted"])

    async def injected_faults(self) -> list[dict[str, Any]]:
        return list(await self._send(_injected_faults()))
