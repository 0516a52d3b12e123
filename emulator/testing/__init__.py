"""Run an emulator in process for tests: ``TelnyxEmulator`` (what the pytest fixture yields).

One background thread runs an event loop of its own with three servers on free loopback ports:

- the emulator itself (``.url``, ``.api_url``), accepting any API key;
- a webhook receiver (``.webhook_url``), the emulator's default webhook URL, recording every webhook;
- a WebSocket receiver (``.stream_url``), recording every stream the emulator opens to it.

Because the servers live in their own thread, a synchronous test can block on ``wait_for_*`` while the
emulator keeps streaming; an async test awaits the ``*_async`` twins, which block a worker thread
instead of its event loop. Every wait is bounded and, on timeout, says what did arrive.

    with TelnyxEmulator(speed=0) as emu:
        emu.control.incoming_call("+13125550111", "+13125550122")
        hook = emu.wait_for_webhook("call.initiated")
"""

from emulator.testing.control import AsyncControlPlane, ControlPlane, ControlPlaneError
from emulator.testing.harness import TelnyxEmulator
from emulator.testing.recorded import ReceivedWebhook, RecordedStream
from emulator.testing.settings import DEFAULT_API_KEY, DEFAULT_TIMEOUT, fixture_settings

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_TIMEOUT",
    "AsyncControlPlane",
    "ControlPlane",
    "ControlPlaneError",
    "ReceivedWebhook",
    "RecordedStream",
    "TelnyxEmulator",
    "fixture_settings",
]
