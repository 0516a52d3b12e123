"""Take the dashboard's pictures for the docs: docs/images/dashboard.png (a live call) and
docs/images/dashboard-ended.png (a call that has ended, with its recordings).

    .venv/bin/python scripts/dashboard_screenshot.py [--out docs/images]

It starts the emulator (real time, on a free port) and examples/voice_bot (the official SDK, echoing the
caller's audio back). It rings the bot twice with the default scenario, and photographs the dashboard in
headless chromium (Debian's ``chromium``, driven by Playwright: ``pip install -e '.[test]'``). It needs
nothing from the network.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = "KEY01"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_up(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(url)).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"nothing answered at {url}")


async def main(out: Path) -> None:
    from playwright.async_api import async_playwright

    emulator_port, bot_port = free_port(), free_port()
    base = f"http://127.0.0.1:{emulator_port}"
    env = {**os.environ, "TELNYX_API_KEY": KEY}
    python = sys.executable
    emulator = subprocess.Popen(
        [
            python,
            "-m",
            "emulator",
            "--port",
            str(emulator_port),
            "--webhook-url",
            f"http://127.0.0.1:{bot_port}/webhooks",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    processes = [emulator]
    try:
        await wait_up(f"{base}/_emulator/health")
        answer = httpx.get(f"{base}/_emulator/public-key", headers={"Authorization": f"Bearer {KEY}"})
        public_key = answer.json()["data"]["public_key"]
        bot_env = {**env, "TELNYX_BASE_URL": f"{base}/v2", "TELNYX_PUBLIC_KEY": public_key}
        bot = [python, "examples/voice_bot/bot.py", "--port", str(bot_port)]
        processes.append(subprocess.Popen(bot, env=bot_env, cwd=ROOT, stderr=subprocess.DEVNULL))
        await wait_up(f"http://127.0.0.1:{bot_port}/webhooks")
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as client, async_playwright() as playwright:
            chromium = shutil.which("chromium") or shutil.which("chromium-browser")
            browser = await playwright.chromium.launch(executable_path=chromium, args=ARGS)
            page = await browser.new_page(viewport={"width": 1440, "height": 1080}, device_scale_factor=1)
            await page.goto(f"{base}/_emulator/ui#key={KEY}")
            ring = {"from": "+13125550111", "to": "+13125550122"}
            first = (await client.post("/_emulator/calls", json=ring)).json()["data"]["call_control_id"]
            await page.wait_for_selector(f'tr.call[data-call="{first}"] .state.ended', timeout=20000)
            second = (await client.post("/_emulator/calls", json=ring)).json()["data"]["call_control_id"]
            await page.click(f'tr.call[data-call="{second}"]')
            await page.wait_for_selector("canvas.wave.live", timeout=10000)
            await page.wait_for_timeout(3500)  # the caller's greeting has scrolled in
            await page.screenshot(path=str(out / "dashboard.png"))
            await page.click(f'tr.call[data-call="{first}"]')
            await page.wait_for_selector(".recording[data-track=app][data-duration-ms]", timeout=10000)
            await page.locator("li.entry.lane-webhook", has_text="call.dtmf.received").first.locator("button").click()
            await page.screenshot(path=str(out / "dashboard-ended.png"), full_page=True)
            await browser.close()
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
    print(f"wrote {out / 'dashboard.png'} and {out / 'dashboard-ended.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder (default: docs/images)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(args.out))
