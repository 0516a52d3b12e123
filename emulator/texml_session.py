"""One TeXML call: fetch the app's document, run its verbs on the call, follow its redirects and callbacks.

Each verb runs as the Call Control command it resembles (``emulator/texml/commands.py``): its body goes through
that command's schema and handler and its effects through the runtime, exactly as an app's command would, and the
runner waits for the event that ends it (``call.speak.ended``, ``call.gather.ended``, ...). The call's events
reach the runner instead of a webhook URL (``Runtime.emit``); the app hears of the call through TeXML's own
requests: the document fetch, ``action`` URLs, status callbacks, each form-encoded and signed as Telnyx signs
webhooks, and each in the namespace's webhook log.

A document that cannot run (the fetch failed and so did the fallback, the XML is malformed, a verb is unknown, an
attribute is bad) is logged with its line, kept on the call (``GET /_emulator/calls/{id}``: ``texml.errors``), and
the call is hung up (docs/texml.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import httpx

from emulator import texml_verbs as verbs
from emulator.calls.actions import ACTIONS
from emulator.calls.effects import Cue, StartTimer
from emulator.calls.models import Call, CallState, Direction
from emulator.errors import ApiError
from emulator.texml import commands
from emulator.texml.application import TexmlApplication
from emulator.texml.commands import CallFacts, Command
from emulator.texml.document import parse_texml
from emulator.texml.errors import TexmlError
from emulator.texml.verbs import (
    Connect,
    Dial,
    Document,
    Gather,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    Start,
    Stop,
    Verb,
)
from emulator.texml_requests import send_request
from emulator.texml_verbs import CallEnded, DocumentFailed
from emulator.timestamps import iso_utc
from emulator.timing import FRAME_MS

if TYPE_CHECKING:
    from emulator.calls.namespaces import Namespace
    from emulator.state import EmulatorState

log = logging.getLogger(__name__)

MAX_DOCUMENTS = 100  # documents one call may fetch: a Redirect loop ends the call rather than spin forever


class TexmlSession:
    """The runner of one call's TeXML (``Call.texml``)."""

    def __init__(
        self, state: EmulatorState, namespace: Namespace, call: Call, source: TexmlApplication, base_url: str | None
    ) -> None:
        self.state, self.namespace, self.call, self.source = state, namespace, call, source
        self.base_url = base_url  # where the emulator was reached: the files it serves (recordings) link there
        direction = "inbound" if call.direction.value == "incoming" else "outbound-api"
        account = state.user_id
        self.facts = CallFacts(call.call_control_id, account, call.from_, call.to, direction, call.connection_id)
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.ended = asyncio.Event()  # call.hangup arrived
        self.document_url: str | None = source.voice_url
        self.documents = 0
        self.verb: str | None = None  # the verb running now, as "<Say> (line 3)"
        self.errors: list[str] = []
        self.streams: dict[str, tuple[str | None, str | None, str]] = {}  # stream id: name, status callback, method
        self.reported: set[tuple[str, str]] = set()  # (stream id, streaming event) already told
        self.pauses = 0  # Pause timers set: each waits for its own cue

    # -- what the call model sees --------------------------------------------------------------------------

    def on_event(self, event_type: str, payload: dict[str, Any]) -> None:
        if event_type in ("streaming.started", "streaming.stopped", "streaming.failed"):
            # Telnyx's streaming.started and .stopped name no stream: which one, by its URL and its state.
            stream_id = self._stream_of(event_type, payload)
            payload = {**payload, "stream_id": stream_id}
            self._stream_callback(event_type, stream_id, payload)
        self.events.put_nowait((event_type, payload))
        if event_type == "call.hangup":
            self.ended.set()
        if event_type == "call.hangup" and self.source.status_callback:
            params = commands.call_params(self.facts, commands.final_status(self._was_answered(), payload))
            params["CallDuration"] = str(self._duration())
            url, method = self.source.status_callback, self.source.status_callback_method
            self.spawn(self.request(url, method, params, "status"))

    def stop(self) -> None:
        """The call is being forgotten (a reset) or the emulator stops: whatever the runner waits for, it ends."""
        self.ended.set()
        self.events.put_nowait(("call.hangup", {"hangup_cause": "normal_clearing"}))

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.source.voice_url,
            "document_url": self.document_url,
            "documents": self.documents,
            "verb": self.verb,
            "errors": list(self.errors),
        }

    # -- running the document -------------------------------------------------------------------------------

    def start(self) -> None:
        self.spawn(self.run())

    async def run(self) -> None:
        try:
            if self.call.direction is Direction.OUTGOING and not await self._until_answered():
                return  # the callee never answered: the status callback says why
            status = "ringing" if self.call.state is CallState.PARKED else "in-progress"
            document = await self._first_document(status)
            while document is not None:
                document = await self._execute(document)
            self.command(Command("hangup", {}))  # the document ran out: Telnyx ends the call
        except CallEnded:
            pass
        except DocumentFailed as exc:
            self._give_up(str(exc))
        except Exception as exc:  # a bug: the call must not be left up with nothing running it; the task fails
            self._give_up(f"{self.verb or 'the document'}: the emulator failed: {type(exc).__name__}: {exc}")
            raise
        finally:
            self.verb = None

    def _give_up(self, reason: str) -> None:
        self.errors.append(reason)
        log.warning("texml: call %s: %s; hanging up", self.call.call_control_id, reason)
        if self.call.is_alive:
            try:
                self.command(Command("hangup", {}))
            except (DocumentFailed, CallEnded):
                pass

    async def _until_answered(self) -> bool:
        while True:
            event_type, _ = await self.events.get()
            if event_type == "call.answered":
                return True
            if event_type == "call.hangup":
                return False

    async def _first_document(self, status: str) -> Document | None:
        if self.source.document is not None:
            return self._parse(self.source.document.encode(), "the inline document")
        assert self.source.voice_url is not None
        return await self.fetch(self.source.voice_url, self.source.voice_method, {}, status)

    async def _execute(self, document: Document) -> Document | None:
        """Run ``document``'s verbs; the next document (Redirect, an action URL), or None when it ran out."""
        for warning in document.warnings:
            log.info("texml: call %s: %s", self.call.call_control_id, warning)
        for verb in document.verbs:
            self.verb = f"<{type(verb).__name__}> (line {verb.line})"
            if not isinstance(verb, (Reject, Redirect, Hangup, Stop)):  # those need no audio: no answer yet
                await self._answered()
            following = await self._run_verb(verb)
            if following is not None:
                return following
        return None

    async def _run_verb(self, verb: Verb) -> Document | None:
        match verb:
            case Say():
                await self.perform(commands.say(verb))
            case Play():
                await self.perform(commands.play(verb))
                if verb.digits is not None:  # send_dtmf overlays its tones: wait them out, as Telnyx plays them
                    await self.pause(commands.digits_ms(verb.digits) / 1000)
            case Pause():
                await self.pause(verb.length)
            case Gather():
                return await verbs.gather(self, verb)
            case Record():
                return await verbs.record(self, verb)
            case Hangup():
                self.command(Command("hangup", {}))
                raise CallEnded
            case Reject():
                if self.call.state is CallState.PARKED:
                    self.command(commands.reject(verb))
                else:  # answered already: Telnyx can only hang up
                    self.command(Command("hangup", {}))
                raise CallEnded
            case Redirect():
                return await self.fetch(self.absolute(verb.url), verb.method.value, {}, "in-progress")
            case Connect():
                await self.perform(commands.stream_start(verb.stream, wait=True), stream=verb.stream)
            case Start():
                await self.perform(commands.stream_start(verb.stream, wait=False), stream=verb.stream)
            case Stop():
                self._stop_stream(verb.stream.name)
            case Dial():
                return await verbs.dial(self, verb)
        return None

    async def _answered(self) -> None:
        if self.call.state is CallState.PARKED:
            self.command(Command("answer", {}))

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` of the call's media time (a timer on its media: in step with its audio at any --speed),
        or until the call hangs up (a Pause of a day must not outlive it)."""
        self.raise_if_ended()
        if self.state.runtime.media.runner_of(self.call) is None:  # no media running: the call's clock
            sleeping = asyncio.ensure_future(self.state.runtime.sleep(seconds))
            ending = asyncio.ensure_future(self.ended.wait())
            try:
                await asyncio.wait((sleeping, ending), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeping.cancel()
                ending.cancel()
            self.raise_if_ended()
            return
        self.pauses += 1
        token = str(self.pauses)
        self.state.runtime.apply([StartTimer(self.call, round(seconds * 1000), Cue(commands.PAUSE_CUE, token))])
        await self.until(lambda event_type, payload: event_type == commands.PAUSE_CUE and payload["token"] == token)

    async def until(self, wanted: Callable[[str, dict[str, Any]], bool]) -> dict[str, Any]:
        """The payload of the first event ``wanted`` takes; CallEnded if the call ends first."""
        while True:
            event_type, payload = await self.events.get()
            if event_type == "call.hangup" or payload.get("status") == "call_hangup":
                raise CallEnded  # a speak, playback or gather the hang-up cut short ends nothing else either
            if wanted(event_type, payload):
                return payload

    # -- commands and events -------------------------------------------------------------------------------

    async def perform(self, command: Command, stream: Any = None) -> dict[str, Any]:
        """Send ``command`` and wait for the event that ends it; that event's payload ({} if none is awaited)."""
        before = set(self.call.streams)
        self.command(command)
        started = set(self.call.streams) - before
        if stream is not None:  # remember the new stream's name and status callback, for <Stop> and callbacks
            for stream_id in started:
                callback = self.absolute(stream.status_callback) if stream.status_callback else None
                self.streams[stream_id] = (stream.name, callback, stream.status_callback_method.value)
        if command.until is None:
            return {}
        until = command.until
        # A stream's end is this stream's only: one that <Start> began may end meanwhile.
        return await self.until(
            lambda kind, payload: kind in until and (stream is None or payload["stream_id"] in started)
        )

    def command(self, command: Command, prepare: Callable[[], None] | None = None) -> None:
        """Run a Call Control command on the call, through its schema and handler, as the app's would run."""
        self.raise_if_ended()
        action = ACTIONS[command.action]
        problems = self.state.schemas.validate(action.schema, command.body)
        if problems:
            detail = "; ".join(f"{p.pointer or '/'}: {p.detail}" for p in problems)
            raise DocumentFailed(f"{self.verb}: {command.action} refused it: {detail}")
        context = self.state.context(self.namespace, self.base_url)
        try:
            outcome = action.run(context, self.namespace.store, self.call, command.body)
        except ApiError as exc:
            if not self.call.is_alive:
                raise CallEnded from None
            raise DocumentFailed(f"{self.verb}: {command.action} refused it: {exc}") from None
        if prepare is not None:
            prepare()
        self.state.runtime.apply(outcome.effects)

    def _stop_stream(self, name: str | None) -> None:
        for stream_id, (stream_name, _, _) in self.streams.items():
            record = self.call.streams.get(stream_id)
            if record is not None and record.is_active and (name is None or stream_name == name):
                self.command(Command("streaming_stop", {"stream_id": stream_id}))

    def raise_if_ended(self) -> None:
        if not self.call.is_alive:
            raise CallEnded

    # -- the app's side: documents and callbacks ------------------------------------------------------------

    async def fetch(self, url: str, method: str, extra: dict[str, str], status: str) -> Document:
        """The document at ``url`` (or the fallback URL's, when it fails), parsed."""
        self.documents += 1
        if self.documents > MAX_DOCUMENTS:
            raise DocumentFailed(f"more than {MAX_DOCUMENTS} documents fetched for one call (a Redirect loop?)")
        params = {**self.params(status), **extra}
        failures = []
        for candidate in filter(None, (url, self.source.voice_fallback_url)):
            response = await self.request(candidate, method, params, "document")
            if isinstance(response, httpx.Response) and 200 <= response.status_code < 300:
                self.document_url = candidate
                return self._parse(response.content, candidate)
            failures.append(f"{candidate}: {response if isinstance(response, str) else response.status_code}")
        raise DocumentFailed("no document: " + "; ".join(failures))

    def _parse(self, content: bytes, where: str) -> Document:
        try:
            return parse_texml(content)
        except TexmlError as exc:
            raise DocumentFailed(f"{where}: {exc}") from None

    async def request(self, url: str, method: str, params: dict[str, str], kind: str) -> httpx.Response | str:
        failover = url == self.source.voice_fallback_url and url != self.source.voice_url
        return await send_request(self.state, self.call, url, method, params, kind, failover=failover)

    def _stream_of(self, event_type: str, payload: dict[str, Any]) -> str | None:
        """The stream a streaming event is about: the first of this URL not yet reported in that state."""
        if "stream_id" in payload:
            return str(payload["stream_id"])
        for stream_id, record in self.call.streams.items():
            if record.spec.stream_url != payload.get("stream_url") or (stream_id, event_type) in self.reported:
                continue
            if event_type == "streaming.started" or record.end_reason is not None:
                self.reported.add((stream_id, event_type))
                return stream_id
        return None

    def _stream_callback(self, event_type: str, stream_id: str | None, payload: dict[str, Any]) -> None:
        if stream_id is None:
            return
        name, url, method = self.streams.get(stream_id, (None, None, "POST"))
        if url is None:
            return
        event = {"streaming.started": "stream-started", "streaming.stopped": "stream-stopped"}.get(
            event_type, "stream-failed"
        )
        error = payload.get("failure_reason") if event == "stream-failed" else None
        params = commands.stream_params(event, stream_id, name, iso_utc(time.time()), error)
        self.spawn(self.request(url, method, {**self.params("in-progress"), **params}, "stream"))

    def params(self, status: str) -> dict[str, str]:
        return commands.call_params(self.facts, status)

    def absolute(self, url: str) -> str:
        """``url`` resolved against the document's own URL; a TeXML bin has none, so its URLs must be whole."""
        resolved = urljoin(self.document_url or "", url)
        if not urlsplit(resolved).scheme:
            raise DocumentFailed(f"{self.verb}: {url!r} is relative, and a TeXML bin has no URL to resolve it from")
        return resolved

    def _was_answered(self) -> bool:
        return any(state is CallState.ANSWERED for _, state in self.call.history)

    def _duration(self) -> int:
        """How long the call talked, in its media's time (the same at any --speed)."""
        meter = self.call.meter
        return round(meter.ticks * FRAME_MS / 1000) if meter is not None else 0

    def spawn(self, coroutine: Any) -> None:
        self.state.runtime.spawn(coroutine, name=f"texml-{self.call.call_control_id}")
