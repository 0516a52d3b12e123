"""TeXML calls end to end: a real emulator under uvicorn fetches documents from a real HTTP app (form-encoded,
signed), runs their verbs on the call with the scripted caller, follows Gather's action and Redirect, and reports
what cannot run."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import uvicorn
from nacl.signing import VerifyKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.e2e.bots import scenario_file
from tests.servers import emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"
# A caller who listens to the menu, presses 2 once it ends, then listens to the answer.
IVR_CALLER = """inbound:
  - wait_for: {event: app_audio_end, silence_ms: 300, timeout_ms: 20000}
  - dtmf: {digits: "2"}
  - wait_for: {event: app_audio_end, timeout_ms: 20000}
"""
MENU = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Gather action="/menu" numDigits="1" timeout="5">
    <Say voice="woman">For sales press 1. For billing press 2.</Say>
  </Gather>
  <Redirect>/voice</Redirect>
</Response>"""
BILLING = "<Response><Say>Billing. Goodbye.</Say><Hangup/></Response>"
AGAIN = "<Response><Redirect>/voice</Redirect></Response>"


@dataclass
class Hit:
    path: str
    method: str
    form: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class TexmlApp:
    """A TeXML app: each path answers the document its handler gives for the request's form."""

    pages: dict[str, Callable[[dict[str, str]], str | int]]
    hits: list[Hit] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        form = dict(parse_qsl(body.decode())) if request.method == "POST" else dict(request.query_params)
        self.hits.append(Hit(request.url.path, request.method, form, dict(request.headers), body))
        page = self.pages.get(request.url.path)
        answer = page(form) if page is not None else 404
        if isinstance(answer, int):
            return Response(status_code=answer)
        return Response(answer, media_type="application/xml")

    async def wait_for(self, predicate: Callable[[list[Hit]], bool], seconds: float = 20) -> None:
        async with asyncio.timeout(timeout(seconds)):
            while not predicate(self.hits):
                await asyncio.sleep(0.01)


@asynccontextmanager
async def texml_app(pages: dict[str, Callable[[dict[str, str]], str | int]]) -> AsyncIterator[TexmlApp]:
    app = TexmlApp(pages)
    routes = [Route("/{path:path}", app.handle, methods=["GET", "POST"])]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes), host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(timeout(10)):
        while not server.started:
            await asyncio.sleep(0.005)
    app.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield app
    finally:
        server.should_exit = True
        await task


async def ended(client: httpx.AsyncClient, call_id: str, seconds: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(timeout(seconds)):
        while True:
            call = (await client.get(f"/_emulator/calls/{call_id}")).json()["data"]
            if call["state"] == "ended":
                return dict(call)
            await asyncio.sleep(0.02)


async def test_an_ivr_in_texml_gathers_the_callers_key_and_follows_the_action(tmp_path):
    pages: dict[str, Callable[[dict[str, str]], str | int]] = {
        "/voice": lambda form: MENU,
        "/menu": lambda form: BILLING if form.get("Digits") == "2" else AGAIN,
    }
    settings = emulator_settings(speed=0, scenario=scenario_file(tmp_path, IVR_CALLER))
    async with texml_app(pages) as app, run_emulator(settings) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            created = await client.post(
                "/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "texml_url": f"{app.url}/voice"}
            )
            assert created.status_code == 201, created.text
            call_id = created.json()["data"]["call_control_id"]
            call = await ended(client, call_id)
            public_key = (await client.get("/_emulator/public-key")).json()["data"]["public_key"]
            log = (await client.get(f"/_emulator/webhooks?call_control_id={call_id}")).json()["data"]

    assert [(hit.path, hit.form.get("Digits")) for hit in app.hits] == [("/voice", None), ("/menu", "2")]
    first = app.hits[0]
    assert first.method == "POST" and first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert first.form["CallSid"] == call_id and first.form["From"] == CALLER and first.form["To"] == APP_NUMBER
    assert first.form["CallStatus"] == "ringing" and first.form["Direction"] == "inbound"
    # Signed as Telnyx signs webhooks: Ed25519 over "timestamp|body".
    signed = f"{first.headers['telnyx-timestamp']}|".encode() + first.body
    VerifyKey(base64.b64decode(public_key)).verify(signed, base64.b64decode(first.headers["telnyx-signature-ed25519"]))
    assert abs(int(first.headers["telnyx-timestamp"]) - time.time()) < 60

    assert call["hangup_source"] != "caller"  # the document's <Hangup> ended it, not the caller's script
    assert call["texml"]["errors"] == [] and call["texml"]["documents"] == 2
    # The requests are in the webhook log, with the form they sent; no Call Control webhook was sent.
    assert [entry["event_type"] for entry in log] == ["texml.document", "texml.document"]
    assert log[1]["payload"]["Digits"] == "2" and log[1]["status"] == 200


async def test_a_document_that_cannot_run_is_reported_with_its_line_and_the_call_hangs_up():
    broken = "<Response>\n  <Say>Hello</Say>\n  <Dance/>\n</Response>"
    async with run_emulator(emulator_settings(speed=0)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "texml": broken})
            call = await ended(client, created.json()["data"]["call_control_id"])
    (error,) = call["texml"]["errors"]
    assert "line 3" in error and "Dance" in error


async def test_a_failed_fetch_falls_back_then_hangs_up_when_the_fallback_fails_too():
    pages: dict[str, Callable[[dict[str, str]], str | int]] = {"/voice": lambda form: 500, "/fallback": lambda f: 503}
    async with texml_app(pages) as app, run_emulator(emulator_settings(speed=0)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            body = {"from": CALLER, "to": APP_NUMBER, "texml_url": f"{app.url}/voice"}
            body["texml_fallback_url"] = f"{app.url}/fallback"
            created = await client.post("/_emulator/calls", json=body)
            call = await ended(client, created.json()["data"]["call_control_id"])
    assert [hit.path for hit in app.hits] == ["/voice", "/fallback"]
    (error,) = call["texml"]["errors"]
    assert "500" in error and "503" in error


async def test_a_bad_request_names_the_field():
    async with run_emulator(emulator_settings(speed=0)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            both = {"from": CALLER, "to": APP_NUMBER, "texml": "<Response/>", "webhook_url": "http://127.0.0.1:1/"}
            refused = await client.post("/_emulator/calls", json=both)
            assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "10015"
            outbound = await client.post("/v2/texml/Accounts/AC1/Calls", json={"To": "12", "From": CALLER})
            assert outbound.status_code == 422
            assert outbound.json()["errors"][0]["source"]["pointer"] == "/To"


# -- pipecat's documented Telnyx set-up: <Connect><Stream bidirectionalMode="rtp"> ------------------------------


async def test_pipecats_telnyx_serializer_hears_the_caller_and_is_heard_on_a_texml_connect_stream():
    """pipecat's own code on the app side: its runner recognises the emulator's stream as Telnyx's, its
    TelnyxFrameSerializer decodes the caller's audio and encodes the bot's reply, which the caller hears."""
    utils = pytest.importorskip("pipecat.runner.utils")
    telnyx_serializer = pytest.importorskip("pipecat.serializers.telnyx")
    frames = pytest.importorskip("pipecat.frames.frames")
    import numpy as np
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    seen: dict[str, Any] = {}
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype("<i2").tobytes()  # 1 s at 16 kHz

    async def bot(websocket: WebSocket) -> None:
        await websocket.accept()
        transport, call_data = await utils.parse_telephony_websocket(websocket)
        seen["transport"], seen["call_id"] = transport, call_data.call_id
        params = telnyx_serializer.TelnyxFrameSerializer.InputParams(sample_rate=8000, auto_hang_up=False)
        serializer = telnyx_serializer.TelnyxFrameSerializer(
            call_data.stream_id, call_data.outbound_encoding, "PCMU", params=params
        )
        await serializer.setup(SimpleNamespace(audio_in_sample_rate=8000))  # what pipecat's pipeline does at start
        heard = bytearray()
        replied = False
        async for text in websocket.iter_text():
            if '"mark"' in text:  # the reply has played to its end: the bot is done
                break
            frame = await serializer.deserialize(text)
            if isinstance(frame, frames.InputAudioRawFrame) and not replied:
                heard += frame.audio
            if len(heard) >= 2 * 8000 and not replied:  # a second of the caller: answer it
                reply = frames.OutputAudioRawFrame(audio=tone, sample_rate=16000, num_channels=1)
                await websocket.send_text(await serializer.serialize(reply))
                await websocket.send_text('{"event": "mark", "mark": {"name": "reply"}}')
                replied = True
        seen["heard"] = np.frombuffer(bytes(heard), dtype="<i2")
        await websocket.close()

    document = '<Response><Connect><Stream url="{url}" bidirectionalMode="rtp"/></Connect><Say>Goodbye</Say></Response>'
    routes = [WebSocketRoute("/media", bot)]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes), host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(timeout(10)):
            while not server.started:
                await asyncio.sleep(0.005)
        stream_url = f"ws://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/media"
        settings = emulator_settings(speed=1, scenario="default")
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            body = {"from": CALLER, "to": APP_NUMBER, "texml": document.format(url=stream_url)}
            call_id = (await client.post("/_emulator/calls", json=body)).json()["data"]["call_control_id"]
            call = await ended(client, call_id)
            (stream,) = call["streams"]
            played = await client.get(f"/_emulator/streams/{stream['stream_id']}/recording/app.wav")
    finally:
        server.should_exit = True
        await task

    assert seen["transport"] == "telnyx" and seen["call_id"] == call_id
    heard = seen["heard"].astype(np.float64)
    assert np.sqrt((heard**2).mean()) > 300  # the caller's greeting, decoded by pipecat
    # The bot's reply played to the caller: a second of 440 Hz, resampled and encoded by pipecat.
    import io

    import soundfile

    app_audio, rate = soundfile.read(io.BytesIO(played.content), dtype="float64")
    spectrum = np.abs(np.fft.rfft(app_audio))
    assert rate == 8000 and 7000 <= len(app_audio) <= 8000  # pipecat's resampler keeps back its last few ms
    assert abs(np.argmax(spectrum) * rate / len(app_audio) - 440) < 5
    # <Connect> waited for the stream to end, then the document went on: Goodbye, and the hang-up, well before
    # the caller's 7.5 s script would have ended the call.
    assert stream["end_reason"] == "disconnected" and call["texml"]["errors"] == []
    assert call["texml"]["verb"] is None and call["metrics"]["media_ms"] < 6000


# -- outbound calls, Record, Dial, streams, Reject, the namespace's application -----------------------------


async def test_an_outbound_texml_call_runs_at_the_answer_records_and_reports_its_status():
    pages: dict[str, Callable[[dict[str, str]], str | int]] = {
        "/voice": lambda form: (
            '<Response><Say>Leave a message.</Say><Record action="/recorded" maxLength="2"/></Response>'
        ),
        "/recorded": lambda form: "<Response><Hangup/></Response>",
        "/status": lambda form: "",
    }
    async with texml_app(pages) as app, run_emulator(emulator_settings(speed=0)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            body = {"To": APP_NUMBER, "From": CALLER, "Url": f"{app.url}/voice", "StatusCallback": f"{app.url}/status"}
            started = await client.post("/v2/texml/Accounts/AC123/Calls", json=body)
            assert started.status_code == 200, started.text
            answer = started.json()
            assert answer["status"] == "queued" and answer["to"] == APP_NUMBER and answer["from"] == CALLER
            call = await ended(client, answer["call_sid"])
            await app.wait_for(lambda hits: any(hit.path == "/status" for hit in hits))
            recording = app.hits[1].form["RecordingUrl"]
            served = await client.get(recording)

    voice, recorded, status = app.hits
    assert voice.form["Direction"] == "outbound-api" and voice.form["CallStatus"] == "in-progress"
    assert voice.form["To"] == APP_NUMBER and voice.form["From"] == CALLER
    assert recorded.path == "/recorded" and recorded.form["RecordingDuration"] == "2"
    assert served.status_code == 200 and served.headers["content-type"] == "audio/mpeg"
    assert status.form["CallStatus"] == "completed" and int(status.form["CallDuration"]) >= 2
    assert call["direction"] == "outgoing" and call["texml"]["errors"] == []


async def test_dial_bridges_a_scenario_callee_and_the_document_goes_on_when_it_hangs_up(tmp_path):
    pages: dict[str, Callable[[dict[str, str]], str | int]] = {
        "/voice": lambda form: '<Response><Dial action="/dialed" timeout="10">+13125550199</Dial></Response>',
        "/dialed": lambda form: "<Response><Say>The agent left.</Say></Response>",
    }
    # The dialled number's callee plays the server's default scenario: half a second, then it hangs up.
    settings = emulator_settings(speed=0, scenario=scenario_file(tmp_path, "inbound:\n  - silence: {ms: 500}\n"))
    async with texml_app(pages) as app, run_emulator(settings) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            body = {"from": CALLER, "to": APP_NUMBER, "texml_url": f"{app.url}/voice", "scenario": "stay-on-line"}
            call_id = (await client.post("/_emulator/calls", json=body)).json()["data"]["call_control_id"]
            call = await ended(client, call_id)
            calls = (await client.get("/_emulator/calls")).json()["data"]
    (leg,) = [other for other in calls if other["call_control_id"] != call_id]
    dialed = app.hits[1].form
    assert dialed["DialCallStatus"] == "completed" and dialed["DialCallSid"] == leg["call_control_id"]
    assert leg["to"] == "+13125550199" and leg["bridges"] == 1 and call["bridges"] == 1
    # The leg's events went to the runner, not to a webhook URL: no Call Control webhook at all.
    assert call["texml"]["errors"] == [] and leg["texml"] == {"dialed_by": call_id}


async def test_start_and_stop_stream_report_to_the_streams_status_callback():
    from tests.servers import WsReceiver

    document = (
        '<Response><Start><Stream url="{url}" name="listen" statusCallback="/stream"/></Start>'
        '<Pause length="1"/><Stop><Stream name="listen"/></Stop><Hangup/></Response>'
    )
    pages: dict[str, Callable[[dict[str, str]], str | int]] = {"/stream": lambda form: ""}
    async with texml_app(pages) as app, WsReceiver().running() as target:
        pages["/voice"] = lambda form: document.format(url=target.url)
        # In real time: the stream is up (stream-started) well before the Pause's second is over.
        async with run_emulator(emulator_settings(speed=1)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                body = {"from": CALLER, "to": APP_NUMBER, "texml_url": f"{app.url}/voice", "scenario": "stay-on-line"}
                call_id = (await client.post("/_emulator/calls", json=body)).json()["data"]["call_control_id"]
                call = await ended(client, call_id)
                await app.wait_for(lambda hits: len([h for h in hits if h.path == "/stream"]) == 2)
                call = (await client.get(f"/_emulator/calls/{call_id}")).json()["data"]  # its stream's end, noted
    events = [hit.form for hit in app.hits if hit.path == "/stream"]
    assert [event["StreamEvent"] for event in events] == ["stream-started", "stream-stopped"]
    assert {event["StreamName"] for event in events} == {"listen"}
    assert events[0]["StreamSid"] == call["streams"][0]["stream_id"]
    assert call["streams"][0]["end_reason"] == "stopped"


async def test_reject_never_answers_and_the_namespaces_application_serves_calls_without_texml_fields():
    async with run_emulator(emulator_settings(speed=0)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            assert (await client.get("/_emulator/texml")).status_code == 404
            put = await client.put(
                "/_emulator/texml", json={"document": '<Response><Reject reason="busy"/></Response>'}
            )
            assert put.status_code == 200 and put.json()["data"]["voice_url"] is None
            call_id = (await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})).json()["data"][
                "call_control_id"
            ]
            call = await ended(client, call_id)
            assert call["hangup_cause"] == "user_busy" and [h["state"] for h in call["history"]] == ["parked", "ended"]
            # A webhook_url makes a Call Control call, whatever the namespace's application.
            plain = {"from": CALLER, "to": APP_NUMBER, "webhook_url": "http://127.0.0.1:9/hooks"}
            assert (await client.post("/_emulator/calls", json=plain)).json()["data"]["texml"] is None
            assert (await client.delete("/_emulator/texml")).status_code == 204
            assert (await client.get("/_emulator/texml")).status_code == 404


async def test_a_message_cut_by_the_callers_hang_up_still_reaches_the_record_action(tmp_path):
    """The usual voicemail: the caller speaks and hangs up mid-<Record>; the recording is saved and the action
    URL still gets it (the document it answers is not run: the call is over)."""
    caller = "inbound:\n  - tone: {frequency: 300, ms: 1500}\n  - hangup: {}\n"
    pages: dict[str, Callable[[dict[str, str]], str | int]] = {
        "/voice": lambda form: '<Response><Record action="/recorded" maxLength="60" playBeep="false"/></Response>',
        "/recorded": lambda form: "<Response><Say>Thanks</Say></Response>",
    }
    settings = emulator_settings(speed=0, scenario=scenario_file(tmp_path, caller))
    async with texml_app(pages) as app, run_emulator(settings) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            body = {"from": CALLER, "to": APP_NUMBER, "texml_url": f"{app.url}/voice"}
            call_id = (await client.post("/_emulator/calls", json=body)).json()["data"]["call_control_id"]
            await ended(client, call_id)
            await app.wait_for(lambda hits: any(hit.path == "/recorded" for hit in hits))
    recorded = next(hit.form for hit in app.hits if hit.path == "/recorded")
    assert recorded["CallStatus"] == "completed" and int(recorded["RecordingDuration"]) in (1, 2)
    assert recorded["RecordingUrl"].endswith(".mp3")


async def test_pause_keeps_the_calls_media_time_and_get_keeps_the_urls_own_query():
    """At --speed 0 a Pause lasts as long in the call's media as it says; a GET document keeps its query."""
    pages: dict[str, Callable[[dict[str, str]], str | int]] = {
        "/voice": lambda form: '<Response><Redirect method="GET">/next?step=2</Redirect></Response>',
        "/next": lambda form: '<Response><Pause length="3"/><Hangup/></Response>',
    }
    async with texml_app(pages) as app, run_emulator(emulator_settings(speed=0)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            body = {"from": CALLER, "to": APP_NUMBER, "texml_url": f"{app.url}/voice", "scenario": "stay-on-line"}
            call_id = (await client.post("/_emulator/calls", json=body)).json()["data"]["call_control_id"]
            call = await ended(client, call_id)
    following = app.hits[1]
    assert following.method == "GET" and following.form["step"] == "2" and following.form["CallSid"] == call_id
    assert 3000 <= call["metrics"]["media_ms"] <= 3100


async def test_a_reset_ends_a_running_document_at_once():
    pages: dict[str, Callable[[dict[str, str]], str | int]] = {
        "/voice": lambda form: '<Response><Pause length="600"/></Response>',
    }
    async with texml_app(pages) as app, run_emulator(emulator_settings(speed=1)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            body = {"from": CALLER, "to": APP_NUMBER, "texml_url": f"{app.url}/voice", "scenario": "stay-on-line"}
            await client.post("/_emulator/calls", json=body)
            await app.wait_for(lambda hits: len(hits) == 1)
            assert (await client.post("/_emulator/reset")).status_code == 200
            async with asyncio.timeout(timeout(5)):
                while any(task.get_name().startswith("texml-") for task in asyncio.all_tasks()):
                    await asyncio.sleep(0.01)
