"""TeXML's routes (docs/texml.md): the namespace's TeXML application, TeXML incoming calls, outbound TeXML calls.

- ``PUT``/``GET``/``DELETE /_emulator/texml``: the namespace's TeXML application (its voice URL or a document,
  fallback URL, status callback). ``--texml-url`` gives every namespace one.
- ``POST /_emulator/calls`` with ``texml_url`` or ``texml``, or without ``webhook_url`` when the namespace has a
  TeXML application: an incoming TeXML call (``start_incoming``, called by ``admin.create_inbound_call``).
- ``POST /v2/texml/Accounts/{account_sid}/Calls`` (and the older ``POST /v2/texml/calls/{application_id}``):
  Telnyx's outbound TeXML call. The callee is a scenario callee, as for dial; its document runs at the answer.

The document runs in ``emulator/texml_session.py``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.api.routes import _base_url, emulator_state, namespace_of, validated_body
from emulator.calls.actions.call import dial
from emulator.calls.models import Call
from emulator.calls.namespaces import Namespace
from emulator.errors import NotFound, Problem, ValidationFailed
from emulator.state import EmulatorState
from emulator.texml.application import TexmlApplication
from emulator.texml_session import TexmlSession

# The ring time of an outbound TeXML call when the request gives no Timeout (Telnyx's default).
DEFAULT_TIMEOUT = 30


def application_of(state: EmulatorState, namespace: Namespace) -> TexmlApplication | None:
    """The namespace's TeXML application: its own (PUT /_emulator/texml), else --texml-url's, else None."""
    if namespace.texml is not None:
        return namespace.texml
    url = state.settings.texml_url
    return TexmlApplication(voice_url=url) if url else None


def start_incoming(request: Request, namespace: Namespace, call: Call, body: dict[str, Any]) -> TexmlSession | None:
    """Make ``call`` (just rung, not yet announced) a TeXML call when ``body`` or the namespace asks for one.
    Its events go to the runner from now on; ``TexmlSession.start`` runs the document."""
    state = emulator_state(request)
    own = any(body.get(name) is not None for name in ("texml_url", "texml"))
    if not own and body.get("webhook_url") is not None:
        return None  # a Call Control call, whatever the namespace's application
    base = application_of(state, namespace)
    if not own and base is None:
        return None
    application = (base or TexmlApplication()).overridden(
        voice_url=body.get("texml_url"),
        voice_method=_method(body.get("texml_method")),
        document=body.get("texml"),
        voice_fallback_url=body.get("texml_fallback_url"),
        status_callback=body.get("status_callback"),
        status_callback_method=_method(body.get("status_callback_method")),
    )
    session = TexmlSession(state, namespace, call, application, _base_url(request))
    call.texml = session
    return session


def _method(value: str | None) -> str | None:
    return value.upper() if value is not None else None


# -- the namespace's application ---------------------------------------------------------------------


async def put_application(request: Request) -> Response:
    body = await validated_body(request, "texml_application")
    application = TexmlApplication().overridden(
        voice_url=body.get("voice_url"),
        voice_method=_method(body.get("voice_method")),
        voice_fallback_url=body.get("voice_fallback_url"),
        status_callback=body.get("status_callback"),
        status_callback_method=_method(body.get("status_callback_method")),
        document=body.get("document"),
    )
    namespace_of(request).texml = application
    return JSONResponse({"data": application.as_json()})


async def get_application(request: Request) -> Response:
    application = application_of(emulator_state(request), namespace_of(request))
    if application is None:
        raise NotFound("No TeXML application: PUT /_emulator/texml sets one, or start with --texml-url.")
    return JSONResponse({"data": application.as_json()})


async def delete_application(request: Request) -> Response:
    namespace_of(request).texml = None
    return Response(status_code=204)


async def application(request: Request) -> Response:
    # One route for the three methods, so a 405 on this path lists all of them.
    handlers = {"PUT": put_application, "GET": get_application, "DELETE": delete_application}
    return await handlers[request.method](request)


# -- outbound TeXML calls ----------------------------------------------------------------------------


async def create_call(request: Request) -> Response:
    """Dial ``To``; at the answer, run the call's TeXML. Answers as Telnyx does, with the call's sid added."""
    state = emulator_state(request)
    namespace = namespace_of(request)
    body = await validated_body(request, "texml_call")
    base = application_of(state, namespace) or TexmlApplication()
    source = base.overridden(
        voice_url=body.get("Url"),
        voice_method=_method(body.get("UrlMethod")),
        document=body.get("Texml"),
        voice_fallback_url=body.get("FallbackUrl"),
        status_callback=body.get("StatusCallback"),
        status_callback_method=_method(body.get("StatusCallbackMethod")),
    )
    if source.voice_url is None and source.document is None:
        detail = "Give Url or Texml: the namespace has no TeXML application (PUT /_emulator/texml) to take it from."
        raise ValidationFailed([Problem("10004", "Missing required parameter", detail, "/Url")])
    context = state.context(namespace, _base_url(request))
    scenario, callee = context.callee_for(body["To"])
    dial_body = {
        "to": body["To"],
        "from": body["From"],
        "connection_id": str(request.path_params.get("application_id") or body.get("ApplicationSid") or "texml"),
        "timeout_secs": body.get("Timeout", DEFAULT_TIMEOUT),
    }
    if "TimeLimit" in body:
        dial_body["time_limit_secs"] = body["TimeLimit"]
    call, outcome = dial(context, namespace.store, dial_body, callee, scenario)
    session = TexmlSession(state, namespace, call, source, _base_url(request))
    call.texml = session  # before the effects: call.initiated and the ring go to the runner, not a webhook URL
    state.runtime.apply(outcome.effects)
    session.start()
    answer = {"call_sid": call.call_control_id, "from": call.from_, "to": call.to, "status": "queued"}
    return JSONResponse(answer)


def texml_routes() -> list[Route]:
    return [
        Route("/_emulator/texml", application, methods=["GET", "PUT", "DELETE"]),
        Route("/v2/texml/Accounts/{account_sid}/Calls", create_call, methods=["POST"]),
        Route("/v2/texml/calls/{application_id}", create_call, methods=["POST"]),
    ]
