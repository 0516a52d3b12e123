"""Fuzz every operation of the emulator's own OpenAPI document with schemathesis.

schemathesis generates valid and invalid bodies, path parameters and headers for each operation and
checks every answer: never a 5xx, status codes, content types and bodies as the document declares
them (so every error is Telnyx's ``{"errors": [...]}`` envelope), invalid data rejected, and a missing
or wrong key refused. The emulator runs with one accepted API key so the authentication checks bite.

Examples are derandomized, so CI runs the same cases every time; ``FUZZ_EXAMPLES=2000 scripts/test
tests/fuzz`` explores further.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from emulator.api.openapi import build_document
from emulator.testing import TelnyxEmulator

KEY = "fuzz-key"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def fuzzed_emulator() -> Iterator[TelnyxEmulator]:
    # A short connect timeout: generated stream_urls point nowhere, and their streams should end fast.
    with TelnyxEmulator(api_key=KEY, api_keys=(KEY,), connect_timeout=0.5, max_body_bytes=64 * 1024) as emulator:
        yield emulator
        # Whatever was thrown at it, no background task (stream, webhook) died of an exception.
        assert emulator.state.runtime.failures == []


# The document the emulator serves at /openapi.json, built without a server so cases exist at collection.
# fork_start is left out: its generated udp: targets are real addresses, and the fork would send RTP to them
# from CI for as long as its call lives (tests/e2e/test_fork.py checks its bodies and answers). The event stream
# is left out too: its answer never ends (tests/e2e/test_event_feed.py reads it).
schema = (
    schemathesis.openapi.from_dict(build_document())
    .exclude(operation_id="StartCallFork")
    .exclude(operation_id="streamEvents")
)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_no_generated_request_breaks_the_api(case: schemathesis.Case, fuzzed_emulator: TelnyxEmulator) -> None:
    # positive_data_acceptance is left out: a schema-valid command can still be refused for the
    # call's state (streaming_stop with nothing streaming is 422 90048), as Telnyx refuses it.
    excluded = [positive_data_acceptance]
    if case.operation.query:
        # The log filters' "extra query parameter" cases give the extra one a value that the request
        # leaves out (None), so the server never sees it; an extra name that is sent is refused (400),
        # which tests/e2e/test_control_plane.py checks.
        excluded.append(negative_data_rejection)
    case.call_and_validate(
        base_url=fuzzed_emulator.url,
        headers={"Authorization": f"Bearer {KEY}"},
        excluded_checks=excluded,
    )
