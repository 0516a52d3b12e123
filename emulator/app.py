"""create_app: build one emulator (settings, schemas, scenarios, store, runtime) as a Starlette app.

Nothing happens at import time; ``uvicorn --factory emulator.app:create_app`` reads the settings
from ``TELNYX_EMULATOR_*`` variables. Bad schemas, scenarios or settings raise here, before the
server listens, with a message naming the file and field.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from emulator.auth import BearerAuth
from emulator.clock import Clock, RealClock
from emulator.config import Settings
from emulator.errors import ApiError
from emulator.ids import IdFactory
from emulator.media import MediaLibrary
from emulator.routes import api_routes, render_api_error, render_http_exception, render_unexpected
from emulator.runtime import Runtime
from emulator.scenarios import load_scenarios
from emulator.schemas import SchemaRegistry, default_schema_dir
from emulator.state import EmulatorState
from emulator.store import CallStore

log = logging.getLogger(__name__)


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The client TLS context for wss:// stream targets."""
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if settings.insecure_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def build_state(settings: Settings, *, clock: Clock | None = None, ids: IdFactory | None = None) -> EmulatorState:
    ids = ids or IdFactory()
    clock = clock or RealClock(settings.speed)
    library = MediaLibrary(load_scenarios(settings.scenario_dir), settings.scenario)
    # Encode the default scenario now, so the first stream does not pay for it.
    library.media(library.default, settings.call_codec)
    runtime = Runtime(library, clock, ssl_context=tls_context(settings), connect_timeout=settings.connect_timeout)
    return EmulatorState(
        settings=settings,
        schemas=SchemaRegistry.load(default_schema_dir()),
        library=library,
        store=CallStore(ids, command_id_window=settings.command_id_window),
        ids=ids,
        clock=clock,
        runtime=runtime,
        user_id=ids.uuid4(),
    )


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, ids: IdFactory | None = None
) -> Starlette:
    settings = settings or Settings.from_env(os.environ)
    state = build_state(settings, clock=clock, ids=ids)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await state.runtime.aclose()

    app = Starlette(
        routes=api_routes(),
        middleware=[Middleware(BearerAuth, api_keys=settings.api_keys)],
        exception_handlers={
            ApiError: render_api_error,
            HTTPException: render_http_exception,
            Exception: render_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.emulator = state
    return app
