"""EmulatorState: everything one emulator instance holds, built by ``app.create_app``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from emulator.api.schemas import SchemaRegistry
from emulator.calls.actions.context import CommandContext
from emulator.calls.ids import IdFactory
from emulator.calls.namespaces import Namespace, Namespaces
from emulator.calls.store import LENIENT_CONNECTION_ID
from emulator.clock import Clock
from emulator.config import Settings
from emulator.errors import Problem, ValidationFailed
from emulator.media.library import MediaLibrary
from emulator.runtime import Runtime
from emulator.scenarios.loader import Callee, ScenarioError
from emulator.scenarios.number_map import ScenarioMap
from emulator.timestamps import utc_now
from emulator.webhooks.signing import SigningKey


def utc_timestamp() -> str:
    return utc_now()


@dataclass(slots=True)
class EmulatorState:
    settings: Settings
    schemas: SchemaRegistry
    library: MediaLibrary
    namespaces: Namespaces  # calls, command ids and journals, one set per API key
    ids: IdFactory  # emulator-wide ids: user_id and webhook event ids
    clock: Clock
    runtime: Runtime
    signing_key: SigningKey
    http: httpx.AsyncClient  # webhook deliveries
    user_id: str  # the emulated account's id, sent as start.user_id
    scenario_map: ScenarioMap | None = None  # called number -> scenario

    def scenario_for(self, to: str, requested: str | None = None) -> str | None:
        """The scenario of a new call to ``to``: the one asked for, else the map's, else None (the
        default). Raises ScenarioError for a name or file that does not exist."""
        chosen = requested or (self.scenario_map.for_number(to) if self.scenario_map is not None else None)
        return self.library.resolve(chosen) if chosen is not None else None

    def callee_for(self, to: str) -> tuple[str | None, Callee]:
        """Who answers when the emulator dials ``to``: the scenario the map gives it (None: the default), and its
        callee (answers, rings out, is busy, rejects)."""
        try:
            scenario = self.scenario_for(to)
        except ScenarioError as exc:  # a map entry whose file was removed since start-up
            raise ValidationFailed([Problem("10015", "Unknown scenario", str(exc), "/to")]) from None
        return scenario, self.library.scenarios[scenario or self.library.default].callee

    def context(self, namespace: Namespace | None = None, base_url: str | None = None) -> CommandContext:
        """What a command may know about the world: ids (the namespace's), defaults, the current time, and the
        URL the request came to (``base_url``: files the emulator serves are linked from there)."""
        return CommandContext(
            ids=namespace.ids if namespace is not None else self.ids,
            user_id=self.user_id,
            call_codec=self.settings.call_codec,
            scenario=self.library.default,
            now=self.clock.monotonic(),
            timestamp=utc_timestamp(),
            connection_id=LENIENT_CONNECTION_ID,
            max_streams=self.settings.max_streams,
            running_streams=len(self.runtime.sessions),
            base_url=base_url or f"http://{self.settings.host}:{self.settings.port}",
            callee_for=self.callee_for,
        )
