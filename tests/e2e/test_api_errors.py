"""Every bad request gets Telnyx's error envelope with the right status, code and pointer."""

from __future__ import annotations

import httpx
import pytest

from tests.servers import emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
START = "/v2/calls/v3:abc/actions/streaming_start"
WS = "ws://127.0.0.1:9/stream"
BI = "stream_bidirectional_"


@pytest.fixture
async def client():
    async with run_emulator() as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
        yield client


def codes(response: httpx.Response) -> list[tuple[str, str | None]]:
    return [(e["code"], e.get("source", {}).get("pointer")) for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, [("10004", "/stream_url")]),
        ({"stream_track": "both_tracks"}, [("10004", "/stream_url")]),
        ({"stream_url": "http://example.com/ws"}, [("10003", "/stream_url")]),
        ({"stream_url": "not a url"}, [("10003", "/stream_url")]),
        ({"stream_url": 42}, [("10003", "/stream_url")]),
        ({"stream_url": WS, "stream_track": "both"}, [("10032", "/stream_track")]),
        ({"stream_url": WS, "stream_codec": "pcmu"}, [("10032", "/stream_codec")]),
        ({"stream_url": WS, "stream_bidirectional_mode": "RTP"}, [("10032", "/stream_bidirectional_mode")]),
        ({"stream_url": WS, f"{BI}sampling_rate": 44100}, [("10032", f"/{BI}sampling_rate")]),
        ({"stream_url": WS, f"{BI}target_legs": "all"}, [("10032", f"/{BI}target_legs")]),
        ({"stream_url": WS, "client_state": "not base64!"}, [("90017", "/client_state")]),
        ({"stream_url": WS, "stream_auth_token": "x" * 4001}, [("10033", "/stream_auth_token")]),
        ({"stream_url": WS, "custom_parameters": {"a": "b"}}, [("10015", "/custom_parameters")]),
        ({"stream_url": WS, "custom_parameters": [{"name": "a"}]}, [("10004", "/custom_parameters/0/value")]),
        ({"stream_url": WS, "enable_dialogflow": "yes"}, [("10015", "/enable_dialogflow")]),
        ({"stream_url": WS, "command_id": 7}, [("10015", "/command_id")]),
        ({"stream_url": WS, "stream_codec": "OPUS"}, [("10032", "/stream_codec")]),
        ({"stream_url": WS, "stream_codec": "AMR-WB"}, [("10032", "/stream_codec")]),
        (
            {"stream_url": WS, "stream_track": "x", "stream_codec": "y"},
            [("10032", "/stream_codec"), ("10032", "/stream_track")],
        ),
    ],
)
async def test_bad_streaming_start_bodies_get_422_with_code_and_pointer(client, body, expected):
    response = await client.post(START, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    assert codes(response) == expected
    for error in response.json()["errors"]:
        assert error["title"] and error["detail"]


async def test_unsupported_codec_detail_says_the_emulator_does_not_stream_it(client):
    response = await client.post(START, json={"stream_url": WS, "stream_codec": "OPUS"})
    assert "does not stream OPUS" in response.json()["errors"][0]["detail"]


async def test_zero_length_body_is_an_empty_body(client):
    response = await client.post(START, content=b"")
    assert response.status_code == 422
    assert codes(response) == [("10004", "/stream_url")]


async def test_unknown_fields_are_ignored(client):
    response = await client.post(START, json={"stream_url": WS, "send_silence_when_idle": True, "x": 1})
    assert response.status_code == 200


@pytest.mark.parametrize("raw", [b"{", b"nul", b'{"stream_url": }', b"\xff\xfe"])
async def test_malformed_json_is_400(client, raw):
    response = await client.post(START, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert codes(response) == [("10015", None)]


@pytest.mark.parametrize("path", [START, "/v2/calls", "/_emulator/calls"])
async def test_a_body_nested_past_the_parsers_depth_is_400_not_a_crash(client, path):
    deep = b'{"a":' * 3000 + b"1" + b"}" * 3000
    response = await client.post(path, content=deep, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert codes(response) == [("10015", None)] and "nested too deeply" in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize("body", [[], "text", 3, None])
async def test_a_body_that_is_not_an_object_is_422(client, body):
    response = await client.post(START, json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "key"}],
)
async def test_missing_or_malformed_authorization_is_401(headers):
    async with run_emulator() as emulator, httpx.AsyncClient(base_url=emulator.url, headers=headers) as client:
        response = await client.post(START, json={"stream_url": WS})
        assert response.status_code == 401
        assert codes(response) == [("10009", None)]
        (error,) = response.json()["errors"]
        assert error["title"] == "Authentication failed"
        assert error["meta"] == {"url": "https://developers.telnyx.com/docs/overview/errors/10009"}


async def test_configured_api_keys_reject_other_keys():
    settings = emulator_settings(api_keys=frozenset({"KEY-A"}))
    async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url) as client:
        wrong = await client.post(START, json={}, headers={"Authorization": "Bearer KEY-B"})
        assert wrong.status_code == 401
        right = await client.post(START, json={}, headers={"Authorization": "bearer KEY-A"})
        assert right.status_code == 422  # authenticated; the body is what's wrong


async def test_unknown_route_and_unknown_action_are_404_10005(client):
    for path in ("/v2/nothing", "/v2/calls/v3:abc/actions/fly", "/nothing"):
        response = await client.post(path, json={})
        assert response.status_code == 404, path
        assert codes(response) == [("10005", None)]


async def test_wrong_method_is_405_in_the_envelope(client):
    response = await client.get(START)
    assert response.status_code == 405
    assert response.json()["errors"][0]["title"] == "Method not allowed"
    assert "POST" in response.headers["allow"]


async def test_each_action_takes_telnyxs_method_client_state_update_put_the_others_post(client):
    update = "/v2/calls/v3:abc/actions/client_state_update"
    assert (await client.put(update, json={"client_state": "aGk="})).json() == {"data": {"result": "ok"}}
    for method, path, allowed in (("POST", update, "PUT"), ("PUT", START, "POST")):
        response = await client.request(method, path, json={"client_state": "aGk=", "stream_url": WS})
        assert response.status_code == 405, (method, path)
        assert response.json()["errors"][0]["title"] == "Method not allowed"
        assert response.headers["allow"] == allowed
