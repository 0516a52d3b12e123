"""Property tests of the raw HTTP surface: whatever the path, headers or body, the emulator answers
in Telnyx's envelope with a 4xx (or a 2xx), never a 5xx, and keeps serving.

schemathesis (test_openapi_fuzz.py) explores what the OpenAPI document describes; these explore what
it does not: call_control_ids that are percent-encoded, very long or not ASCII, arbitrary header
values, wrong content types and bodies of arbitrary bytes, up to past the body limit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from emulator.calls.actions import ACTIONS
from emulator.testing import TelnyxEmulator

KEY = "fuzz-key"
BODY_LIMIT = 16 * 1024
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[TelnyxEmulator]:
    with TelnyxEmulator(api_key=KEY, api_keys=(KEY,), connect_timeout=0.5, max_body_bytes=BODY_LIMIT) as running:
        yield running
        assert running.state.runtime.failures == []


@pytest.fixture(scope="module")
def client(emulator: TelnyxEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=10) as http:
        yield http


def assert_telnyx_answer(response: httpx.Response) -> Any:
    """A 2xx or 4xx whose body is JSON; every error is the envelope with digit-string codes."""
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    if response.status_code >= 400:
        assert set(body) == {"errors"} and body["errors"], body
        for error in body["errors"]:
            assert error["code"].isdigit() and error["title"], error
    return body


call_ids = st.one_of(
    st.text(min_size=1, max_size=40),  # any unicode, control characters included
    st.text(alphabet="%:/?#[]@!$&'()*+,;=.~-_", min_size=1, max_size=20),
    st.integers(min_value=500, max_value=6000).map(lambda n: "v3:" + "A" * n),  # very long
)


@FUZZ
@given(call_id=call_ids, action=st.sampled_from(sorted(ACTIONS)), body=st.sampled_from([{}, {"stream_url": "x"}]))
def test_any_call_control_id_is_answered_in_the_envelope(client, call_id, action, body):
    # Percent-encoded once, as an SDK does; the emulator sees the decoded id.
    path = f"/v2/calls/{quote(call_id, safe='')}/actions/{action}"
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert_telnyx_answer(response)
    retrieve = client.get(f"/v2/calls/{quote(call_id, safe='')}", headers={"Authorization": f"Bearer {KEY}"})
    assert_telnyx_answer(retrieve)


# Printable ASCII without surrounding blanks: what an HTTP client can put in a header value at all.
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200).map(str.strip)


@FUZZ
@given(
    authorization=st.one_of(
        header_values, st.just(f"Bearer {KEY}"), header_values.map(lambda value: ("Bearer " + value).strip())
    ),
    content_type=st.one_of(
        header_values,
        st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]),
    ),
    extra=st.dictionaries(st.from_regex(r"\Ax-[a-z]{1,12}\Z"), header_values, max_size=4),
    body=st.one_of(
        st.binary(max_size=2000),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
            max_leaves=20,
        ).map(lambda value: json.dumps(value).encode()),
    ),
)
def test_any_headers_and_body_are_answered_in_the_envelope(client, authorization, content_type, extra, body):
    headers = {**extra, "Authorization": authorization, "Content-Type": content_type}
    response = client.post("/v2/calls/v3:fuzz/actions/streaming_start", content=body, headers=headers)
    body_json = assert_telnyx_answer(response)
    if authorization != f"Bearer {KEY}":
        assert response.status_code == 401 and body_json["errors"][0]["code"] == "10009"


@settings(FUZZ, max_examples=10)
@given(size=st.integers(min_value=BODY_LIMIT + 1, max_value=BODY_LIMIT * 64), chunked=st.booleans())
def test_a_body_past_the_limit_is_413_with_or_without_a_length(client, size, chunked):
    payload = b'{"pad": "' + b"x" * size + b'"}'
    content: Any = iter([payload[i : i + 4096] for i in range(0, len(payload), 4096)]) if chunked else payload
    response = client.post(
        "/v2/calls/v3:fuzz/actions/streaming_start",
        content=content,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert assert_telnyx_answer(response)["errors"][0]["title"] == "Request body too large"


def test_the_emulator_still_serves_after_the_fuzzing(client):
    response = client.post(
        "/v2/calls/v3:after/actions/streaming_stop", json={}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 422 and response.json()["errors"][0]["code"] == "90048"
