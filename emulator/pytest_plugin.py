"""pytest plugin (entry point ``pytest11``): the ``telnyx_emulator`` fixture.

    def test_incoming_call_rings_the_app(telnyx_emulator):
        telnyx_emulator.control.incoming_call("+13125550111", "+13125550122")
        assert telnyx_emulator.wait_for_webhook("call.initiated").payload["direction"] == "incoming"

Each test gets its own emulator (in a background thread, on free ports) with a webhook receiver and a
WebSocket receiver; see ``emulator.testing.TelnyxEmulator`` and docs/pytest.md. Settings come from the
``telnyx_emulator_settings`` fixture (override it in a conftest.py) and then from the closest
``@pytest.mark.telnyx_emulator(speed=1, scenario="tone", ...)`` marker. Nothing heavy is imported
until a test asks for the fixture, so the plugin costs nothing to test runs that do not use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from emulator.testing import TelnyxEmulator

MARKER = "telnyx_emulator"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): settings of the test's telnyx_emulator fixture, e.g. speed=1, scenario='tone', "
        "api_key='KEY...' (the key the fixture's helpers use)",
    )


@pytest.fixture
def telnyx_emulator_settings() -> dict[str, Any]:
    """Settings overrides for every ``telnyx_emulator`` in scope; override this fixture to change them."""
    return {}


@pytest.fixture
def telnyx_emulator(
    request: pytest.FixtureRequest, telnyx_emulator_settings: dict[str, Any]
) -> Iterator[TelnyxEmulator]:
    """A running emulator: ``.url``, ``.api_url``, ``.api_key``, ``.webhook_url``, ``.stream_url``, ``.control``,
    ``wait_for_webhook``, ``wait_for_frames``, ... (``emulator.testing.TelnyxEmulator``)."""
    from emulator.testing import TelnyxEmulator

    overrides = dict(telnyx_emulator_settings)
    # Closest marker wins: apply the farthest (module, class) first.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        overrides.update(marker.kwargs)
    api_key = overrides.pop("api_key", None)
    with TelnyxEmulator(api_key=api_key, **overrides) as emulator:
        yield emulator
