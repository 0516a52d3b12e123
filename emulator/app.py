"""create_app: build one emulator (settings, schemas, scenarios, namespaces, runtime) as a Starlette app.

Nothing happens at import time; ``uvicorn --factory emulator.app:create_app`` reads the settings
from ``TELNYX_EMULATOR_*`` variables. Bad schemas, scenarios or settings raise here, before the
server listens, with a message naming the file and field.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from emulator.api.admin import admin_routes
from emulator.api.auth import BearerAuth
from emulator.api.caller import caller_routes
from emulator.api.dashboard import PREFIX as DASHBOARD_PREFIX, dashboard_routes
from emulator.api.events import event_routes, stream_changed, watch
from emulator.api.faults import fault_routes
from emulator.api.landing import landing_routes
from emulator.api.levels import level_routes
from emulator.api.limits import BodyLimit
from emulator.api.openapi import openapi_routes
from emulator.api.proxy import ProxyGuard
from emulator.api.queues import queue_routes
from emulator.api.recorder import JournalRecorder, NamespacedWebhookSender
from emulator.api.routes import api_routes, render_api_error, render_http_exception, render_unexpected
from emulator.api.schemas import SchemaRegistry, default_schema_dir
from emulator.api.texml import texml_routes
from emulator.calls.ids import IdFactory
from emulator.calls.namespaces import Namespaces
from emulator.clock import Clock, RealClock
from emulator.config import ConfigError, Settings
from emulator.errors import ApiError
from emulator.media.library import MediaLibrary
from emulator.media.recording_files import URL_PREFIX as RECORDING_URL_PREFIX
from emulator.media.recordings import RecordingStore
from emulator.media.stream_watch import StreamLimits
from emulator.media.workers import media_workers
from emulator.runtime import Runtime, WebhookDefaults
from emulator.scenarios.loader import Scenario, default_scenario_dir, load_scenarios
from emulator.scenarios.number_map import ScenarioMap
from emulator.scenarios.tts import SpeechCache
from emulator.state import EmulatorState
from emulator.tls import shared_tls_context, tls_context
from emulator.webhooks.signing import SigningKey, load_or_create_key

log = logging.getLogger(__name__)


def scenarios_of(folder: Path) -> dict[str, Scenario]:
    """The bundled scenarios and those of ``folder``, whose files win over bundled ones of the same name: a
    project's own folder adds callers without hiding default, stay-on-line and the rest."""
    speech = SpeechCache.from_env()  # one cache for both: a text they share is made once
    bundled = default_scenario_dir()
    found = load_scenarios(bundled, speech=speech)
    if folder.resolve() != bundled.resolve():
        found |= load_scenarios(folder, speech=speech)
    return found


def signing_key(settings: Settings) -> SigningKey:
    if settings.signing_key is not None:
        try:
            return SigningKey.from_private_b64(settings.signing_key)
        except ValueError as exc:
            raise ConfigError(f"signing_key: {exc}") from None
    return load_or_create_key(settings.signing_key_file)


def build_state(
    settings: Settings,
    *,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> EmulatorState:
    ids = ids or IdFactory(settings.seed)
    clock = clock or RealClock(settings.speed)
    library = MediaLibrary(scenarios_of(settings.scenario_dir), settings.scenario)
    # Encode the default scenario now, so the first stream does not pay for it.
    library.media(library.default, settings.call_codec)
    scenario_map = ScenarioMap.load(settings.scenario_map) if settings.scenario_map is not None else None
    if scenario_map is not None:
        scenario_map.check(library.scenarios)
    namespaces = Namespaces(
        seed=settings.seed,
        strict=settings.strict_calls,
        command_id_window=settings.command_id_window,
        history=settings.history,
        scenarios=library.scenarios,  # their faults: sections (docs/faults.md)
        default_scenario=library.default,
        watch=watch,  # each namespace's event feed (GET /_emulator/events)
    )
    key = signing_key(settings)
    # Loading CA certificates takes ~50 ms: webhooks and wss:// targets share the process's context unless
    # --ca-file or --insecure change the targets' (they apply to stream targets only).
    system_tls = shared_tls_context()
    runtime = Runtime(
        library,
        clock,
        ids,
        lambda: state.context(),
        ssl_context=tls_context(settings, system_tls),
        connect_timeout=settings.connect_timeout,
        stream_limits=StreamLimits(settings.stream_send_timeout, settings.stream_max_duration),
        webhook_defaults=WebhookDefaults(settings.webhook_url, settings.webhook_failover_url),
        recordings=RecordingStore(directory=settings.recordings_dir),
        call_codec=settings.call_codec,
        media_dir=settings.media_dir,
        workers=media_workers(settings.media_workers, ca_file=settings.ca_file, insecure_tls=settings.insecure_tls),
    )
    # Redirects are not followed: Telnyx counts a 3xx answer to a webhook as a failure.
    http = httpx.AsyncClient(transport=transport, follow_redirects=False, verify=system_tls)
    runtime.clips.http = http  # audio_url fetches share the webhooks' client (and its TLS context)
    runtime.faults_for = lambda call: namespace.faults if (namespace := namespaces.find(call.namespace)) else None
    runtime.on_stream = lambda record: stream_changed(namespaces, record)
    runtime.webhooks = NamespacedWebhookSender(
        http,
        key,
        timeout=settings.webhook_timeout,
        retry_delays=settings.webhook_retry_delays,
        spawn=runtime.spawn,
        history=settings.history,
        namespaces=namespaces,
    )
    state = EmulatorState(
        settings=settings,
        schemas=SchemaRegistry.load(default_schema_dir(), meta_check=False),
        library=library,
        namespaces=namespaces,
        ids=ids,
        clock=clock,
        runtime=runtime,
        signing_key=key,
        http=http,
        user_id=ids.uuid4(),
        scenario_map=scenario_map,
    )
    return state


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    settings = settings or Settings.from_env(os.environ)
    state = build_state(settings, clock=clock, ids=ids, transport=transport)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        workers = state.runtime.workers
        if workers is not None and workers.takes(0):  # --media-workers N: ready before the first stream
            await workers.start()
        try:
            yield
        finally:
            state.namespaces.close_feeds()  # the servers the emulator runs have ended them already (api/events.py)
            for namespace in state.namespaces:  # TeXML documents stop waiting: their calls end now
                for call in namespace.store.calls.values():
                    if call.texml is not None:
                        call.texml.stop()
            await state.runtime.aclose(settings.shutdown_grace)
            await state.http.aclose()

    app = Starlette(
        routes=[
            *api_routes(),
            *queue_routes(),
            *admin_routes(),
            *event_routes(),
            *level_routes(),
            *caller_routes(),
            *fault_routes(),
            *openapi_routes(),
            *landing_routes(),
            *dashboard_routes(),
            *texml_routes(),
        ],
        middleware=[
            # A request for another host, sent to the emulator as a proxy, is refused before anything else.
            Middleware(ProxyGuard),
            # Outermost but one, so no layer below ever holds more than max_body_bytes of a request body.
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
            # The OpenAPI document holds nothing secret; tools (schemathesis, Swagger UI) load it unauthenticated.
            # Health checks (compose, Kubernetes) and the landing page carry no key either. Recording links work
            # without a key, as Telnyx's (pre-signed) ones do. The dashboard's files hold nothing of a namespace:
            # the page sends the key itself (api/dashboard.py).
            Middleware(
                BearerAuth,
                api_keys=settings.api_keys,
                public_paths=("/openapi.json", "/", "/_emulator/health", DASHBOARD_PREFIX),
                public_prefixes=(RECORDING_URL_PREFIX, DASHBOARD_PREFIX + "/"),
            ),
            Middleware(JournalRecorder, namespaces=state.namespaces),
        ],
        exception_handlers={
            ApiError: render_api_error,
            HTTPException: render_http_exception,
            Exception: render_unexpected,
        },
        lifespan=lifespan,
    )
    # Telnyx answers an unknown path 404; Starlette would redirect "/v2/calls/" to "/v2/calls" (307)
    # with no body, which no Telnyx client expects.
    app.router.redirect_slashes = False
    app.state.emulator = state
    return app
