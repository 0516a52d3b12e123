"""EmulatorState: everything one emulator instance holds, built by ``app.create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from emulator.clock import Clock
from emulator.config import Settings
from emulator.ids import IdFactory
from emulator.media import MediaLibrary
from emulator.runtime import Runtime
from emulator.schemas import SchemaRegistry
from emulator.store import CallStore


@dataclass(slots=True)
class EmulatorState:
    settings: Settings
    schemas: SchemaRegistry
    library: MediaLibrary
    store: CallStore
    ids: IdFactory
    clock: Clock
    runtime: Runtime
    user_id: str  # the emulated account's id, sent as start.user_id
