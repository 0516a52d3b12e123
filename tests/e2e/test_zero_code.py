"""Unmodified apps reach the emulator: its port is an HTTPS proxy for api.telnyx.com (CONNECT, terminated with
the local CA's certificate) and takes absolute-form requests; every other host is refused, never forwarded."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from pathlib import Path

import httpx
import pytest
import telnyx

from emulator.local_ca import LocalCA
from tests.receivers import WebhookReceiver
from tests.servers import emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
APP = Path(__file__).resolve().parents[1] / "apps" / "hardcoded_dialer.py"


async def test_an_unmodified_app_that_hard_codes_api_telnyx_com_dials_through_the_proxy(tmp_path):
    settings = emulator_settings(cert_dir=tmp_path)
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(settings.replace(webhook_url=hooks.url), proxy=True) as emulator:
            env = {
                **os.environ,
                "HTTPS_PROXY": emulator.url,
                "SSL_CERT_FILE": str(LocalCA(tmp_path).bundle()),
                "TELNYX_API_KEY": "test-key",
            }
            env.pop("NO_PROXY", None)
            env.pop("no_proxy", None)
            app = await asyncio.create_subprocess_exec(
                sys.executable, str(APP), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await asyncio.wait_for(app.communicate(), 30)
            assert app.returncode == 0, err.decode()
            call_id = out.decode().strip()
            assert call_id.startswith("v3:") and call_id in emulator.store().calls
            await hooks.wait_until(lambda: any(r.event_type == "call.initiated" for r in hooks.requests))


async def test_the_official_sdk_and_httpx_reach_the_emulator_as_api_telnyx_com(tmp_path):
    async with run_emulator(emulator_settings(cert_dir=tmp_path), proxy=True) as emulator:
        trusted = ssl.create_default_context(cafile=str(LocalCA(tmp_path).ca_path))
        # Each tunnel new: the request may arrive with the end of the TLS handshake, before the tunnel's
        # protocol is told of its connection (it must be kept, not lost).
        for n in range(10):
            async with httpx.AsyncClient(proxy=emulator.url, verify=trusted, headers=AUTH) as client:
                answer = await client.post(f"https://api.telnyx.com/v2/calls/v3:x{n}/actions/hangup", json={})
                assert answer.json() == {"data": {"result": "ok"}}
        async with httpx.AsyncClient(proxy=emulator.url, verify=trusted, headers=AUTH) as client:
            bad = await client.post("https://api.telnyx.com/v2/calls/v3:x/actions/speak", json={"payload": "hi"})
            assert bad.status_code == 422 and bad.json()["errors"][0]["source"] == {"pointer": "/voice"}
        http_client = telnyx.DefaultAsyncHttpxClient(proxy=emulator.url, verify=trusted)
        async with telnyx.AsyncTelnyx(api_key="test-key", http_client=http_client) as sdk:  # no base_url
            dialed = await sdk.calls.dial(connection_id="1", from_="+13125550111", to="+13125550122")
        assert dialed.data.call_control_id in emulator.store().calls


async def test_other_hosts_are_refused_and_a_client_that_does_not_trust_the_ca_fails_cleanly(tmp_path):
    async with run_emulator(emulator_settings(cert_dir=tmp_path), proxy=True) as emulator:
        host, port = emulator.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 403 ") and b"does not forward requests to example.com:443" in answer
        async with httpx.AsyncClient(proxy=emulator.url, headers=AUTH) as client:
            absolute = await client.get("http://example.com/v2/calls")  # absolute form, as axios sends it
            assert absolute.status_code == 403 and absolute.json()["errors"][0]["title"] == "Host not emulated"
            # Absolute form for api.telnyx.com is served (a proxy that is sent plain http://).
            served = await client.post("http://api.telnyx.com/v2/calls/v3:x/actions/hangup", json={})
            assert served.json() == {"data": {"result": "ok"}}
        async with httpx.AsyncClient(proxy=emulator.url, headers=AUTH) as untrusting:  # the system CAs only
            with pytest.raises(httpx.ConnectError):
                await untrusting.get("https://api.telnyx.com/v2/calls/v3:x")
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:  # still serving
            assert (await client.get("/openapi.json")).status_code == 200


async def test_tls_port_serves_the_api_as_api_telnyx_com_and_stops_with_the_emulator(tmp_path):
    from tests.e2e.test_shutdown import emulator_process, free_port

    tls_port = free_port()
    async with emulator_process("--tls-port", str(tls_port), TELNYX_EMULATOR_CERT_DIR=str(tmp_path)) as (process, _):
        trusted = ssl.create_default_context(cafile=str(LocalCA(tmp_path).ca_path))
        async with httpx.AsyncClient(verify=trusted, headers=AUTH) as client:
            # localhost is one of the certificate's names; a hosts-file setup reaches it as api.telnyx.com.
            base = f"https://localhost:{tls_port}"
            assert (await client.get(f"{base}/_emulator/health")).json() == {"data": {"status": "ok"}}
            hung_up = await client.post(f"{base}/v2/calls/v3:tls/actions/hangup", json={})
            assert hung_up.json() == {"data": {"result": "ok"}}
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0  # both listeners stop on one signal
