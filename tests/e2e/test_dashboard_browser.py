"""The dashboard (``/_emulator/ui``) in a real headless browser: Debian's chromium driven by Playwright, against
a real emulator under uvicorn with a real webhook receiver and a real WebSocket stream target.

A call is rung, the page sees it appear, opens it, presses a key in the caller console and sees the
``call.dtmf.received`` webhook in the timeline; the live waveforms scroll while the stream runs; after the
caller hangs up from the console, the recordings are drawn with the caller's steps marked on them.

chromium is a system package (``.ci/run`` installs it): without it these tests are skipped here, and fail in
CI (``CI`` set), where a skip would hide that the dashboard went untested.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.receivers import WebhookReceiver
from tests.servers import WsReceiver, emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CALLER, APP_NUMBER = "+13125550111", "+13125550122"
KEY = "test-key"
# What Chromium needs to start here: no sandbox as root, and no background connections to Google's hosts
# (the machines that run this have no network, and each refused connection is noise in the log).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("EMULATOR_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "no chromium: apt-get install chromium (or set EMULATOR_TEST_CHROMIUM to a Chromium binary)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@asynccontextmanager
async def browser_page(expected_errors: tuple[str, ...] = ()) -> AsyncIterator[Any]:
    """A page in headless chromium; the test fails if the page reports an error (a script's, a blocked load)
    other than those containing one of ``expected_errors``."""
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            yield page
            unexpected = [error for error in errors if not any(part in error for part in expected_errors)]
            assert unexpected == [], f"the page reported errors: {unexpected}"
        finally:
            await browser.close()


@asynccontextmanager
async def running() -> AsyncIterator[tuple[Any, WebhookReceiver, WsReceiver, httpx.AsyncClient]]:
    # --speed 1: the call's media runs in real time, so it is still up while the page acts on it.
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        settings = emulator_settings(speed=1, webhook_url=hooks.url)
        async with run_emulator(settings) as emulator:
            headers = {"Authorization": f"Bearer {KEY}"}
            async with httpx.AsyncClient(base_url=emulator.url, headers=headers) as client:
                yield emulator, hooks, target, client


async def ring(client: httpx.AsyncClient) -> str:
    created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": "stay-on-line"})
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["call_control_id"])


async def test_a_rung_call_appears_and_a_key_pressed_in_the_console_reaches_the_timeline() -> None:
    async with running() as (emulator, hooks, target, client), browser_page() as page:
        await page.goto(f"{emulator.url}/_emulator/ui#key={KEY}")
        await page.wait_for_selector("#connection[data-state=live]", timeout=timeout(10) * 1000)

        call_id = await ring(client)
        row = page.locator(f'tr.call[data-call="{call_id}"]')
        await row.wait_for(timeout=timeout(10) * 1000)
        assert await row.locator(".state").inner_text() == "parked"

        answer = await client.post(f"/v2/calls/{call_id}/actions/answer", json={"stream_url": target.url})
        assert answer.status_code == 200
        await page.wait_for_selector(f'tr.call[data-call="{call_id}"] .state.answered', timeout=timeout(10) * 1000)
        await row.click()
        await page.wait_for_selector(".console .keypad", timeout=timeout(10) * 1000)
        # The live waveforms of the stream: both tracks, scrolling (their labels say how far the media is).
        await page.wait_for_selector("canvas.wave.live[data-track=inbound]", timeout=timeout(10) * 1000)
        assert await page.locator("canvas.wave.live[data-track=outbound]").count() == 1

        await page.click('.keypad button[data-key="5"]')
        entry = page.locator("li.entry.lane-webhook", has_text="call.dtmf.received")
        await entry.wait_for(timeout=timeout(15) * 1000)
        assert "→ 200" in await entry.inner_text()
        # The same key reached the app's webhook URL.
        dtmf = next(r for r in hooks.requests if r.event_type == "call.dtmf.received")
        assert dtmf.json["data"]["payload"]["digit"] == "5"
        # Opening the entry shows the payload sent and the signature headers of each attempt.
        await entry.locator("button.entry-head").click()
        detail = await entry.locator(".detail").inner_text()
        assert '"digit": "5"' in detail
        assert "telnyx-signature-ed25519" in detail
        # The answer command is in the timeline, with its status.
        assert "POST answer → 200" in await page.locator("li.entry.lane-command").first.inner_text()

        await page.click(".console button.hangup")
        await page.wait_for_selector(f'tr.call[data-call="{call_id}"] .state.ended', timeout=timeout(10) * 1000)
        # Ended: the stream's recordings, drawn, with the caller's key press marked on the inbound track.
        inbound = page.locator(".recording[data-track=inbound]")
        await inbound.wait_for(timeout=timeout(10) * 1000)
        await page.wait_for_selector(".recording[data-track=inbound][data-duration-ms]", timeout=timeout(10) * 1000)
        assert int(await inbound.get_attribute("data-duration-ms") or 0) > 0
        assert await inbound.locator(".marker.caller", has_text="presses 5").count() == 1
        assert await page.locator(".recording audio").count() == 3
        assert await page.locator(".console").count() == 0  # no console on an ended call


async def test_a_refused_key_says_so_and_the_page_needs_no_key_to_load() -> None:
    settings = emulator_settings(api_keys=frozenset({"right-key"}))
    async with run_emulator(settings) as emulator, browser_page(expected_errors=("status of 401",)) as page:
        await page.goto(f"{emulator.url}/_emulator/ui#key=wrong-key")
        await page.wait_for_selector("#connection[data-state=key]", timeout=timeout(10) * 1000)
        assert "refused" in await page.locator("#connection").inner_text()


def test_the_dashboard_files_are_in_the_package() -> None:
    """Everything the page loads comes from emulator/ui/ (no CDN): each script it imports is a file there."""
    folder = Path(__file__).resolve().parents[2] / "emulator" / "ui"
    for script in folder.glob("*.js"):
        for line in script.read_text().splitlines():
            if line.startswith("import ") and " from " in line:
                name = line.split(" from ")[1].strip().strip(";").strip('"')
                assert name.startswith("./") and (folder / name[2:]).is_file(), f"{script.name}: {line}"
    page = (folder / "index.html").read_text()
    assert "http://" not in page and "https://" not in page
