"""What installs the emulator elsewhere works: a wheel carries the package with its schemas and scenarios, and
the Dockerfile's command, environment and health check start and check a real emulator (the image itself is
not built here: no container engine in CI)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_shutdown import free_port
from tests.servers import TEST_SIGNING_KEY, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": "Bearer k"}


async def test_a_wheel_installs_in_a_fresh_venv_and_serves_from_there(tmp_path):
    """What a user of another project gets: the wheel, installed with its dependencies into a new venv, run
    from elsewhere: its commands work, and it serves the API with the bundled schemas and scenarios."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=timeout(180),
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("telnyx_emulator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "emulator/_data/schemas/dial.schema.json" in names and "emulator/_data/scenarios/default.yaml" in names
    assert any(name.startswith("emulator/_data/scenarios/audio/") for name in names)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=timeout(60))
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=timeout(300),
    )
    assert install.returncode == 0, install.stderr[-2000:]
    command = str(venv / "bin" / "telnyx-emulator")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELNYX_", "PYTHONPATH", "VIRTUAL_ENV"))} | {
        "TELNYX_EMULATOR_SIGNING_KEY": TEST_SIGNING_KEY,
        "TELNYX_EMULATOR_CERT_DIR": str(tmp_path / "certs"),
    }
    listed = subprocess.run([command, "scenario", "list"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert {line.split()[0] for line in listed.stdout.splitlines()} >= {"default", "ivr-menu", "stay-on-line"}
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        command, "--port", str(port), cwd=tmp_path, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        async with asyncio.timeout(timeout(30)), httpx.AsyncClient(base_url=url, headers=AUTH) as client:
            while True:
                assert process.returncode is None, (await process.stderr.read()).decode()  # type: ignore[union-attr]
                try:
                    await client.get("/_emulator/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            dial = {"connection_id": "1", "from": "+13125550111", "to": "+13125550122"}
            dialed = await client.post("/v2/calls", json=dial)
            assert dialed.status_code == 200 and dialed.json()["data"]["call_control_id"].startswith("v3:")
            speak = await client.post("/v2/calls/v3:x/actions/speak", json={"payload": "hi"})  # its schemas load
            assert speak.status_code == 422 and speak.json()["errors"][0]["source"] == {"pointer": "/voice"}
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout(10)) == 0


def test_the_wheels_package_list_is_every_package_of_the_source():
    """pyproject.toml names the packages a wheel carries: one left out installs a package that cannot import."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "emulator").rglob("__init__.py")}
    assert found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"


def dockerfile() -> tuple[dict[str, str], list[str], list[str]]:
    """The Dockerfile's ENV, its CMD and its HEALTHCHECK's command (exec form)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV (.*)$", text, flags=re.MULTILINE):
        for pair in shlex.split(line):
            name, _, value = pair.partition("=")
            env[name] = value
    (cmd,) = re.findall(r"^CMD (\[.*\])$", text, flags=re.MULTILINE)
    (health,) = re.findall(r"^HEALTHCHECK .* CMD (\[.*\])$", text, flags=re.MULTILINE)
    return env, json.loads(cmd), json.loads(health)


async def test_the_images_command_and_environment_serve_and_its_health_check_passes(tmp_path):
    env, cmd, health = dockerfile()
    assert cmd == ["telnyx-emulator"] and env["TELNYX_EMULATOR_HOST"] == "0.0.0.0"
    port = free_port()
    # The image's environment, its /data folder moved here; this checkout's command.
    environ = {**os.environ, **{k: v.replace("/data", str(tmp_path)) for k, v in env.items()}}
    environ |= {"TELNYX_EMULATOR_PORT": str(port), "TELNYX_EMULATOR_SIGNING_KEY": TEST_SIGNING_KEY}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulator", env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        check = [part.replace(":8000/", f":{port}/") for part in health]
        assert check[0] == "python"
        async with asyncio.timeout(timeout(20)):
            while True:
                probe = await asyncio.create_subprocess_exec(
                    sys.executable, *check[1:], stderr=asyncio.subprocess.DEVNULL
                )
                if await probe.wait() == 0:
                    break
                assert process.returncode is None, (await process.stderr.read()).decode()  # type: ignore[union-attr]
                await asyncio.sleep(0.1)
        assert (tmp_path / "ca.pem").is_file()  # the local CA went to the image's /data
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout(10)) == 0
