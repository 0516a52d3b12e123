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

import pytest

from tests.e2e.test_shutdown import free_port
from tests.servers import TEST_SIGNING_KEY, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


def test_a_wheel_carries_the_package_its_schemas_and_scenarios_and_runs_from_itself(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=timeout(180),
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("telnyx_emulator-*.whl")
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(unpacked)
    assert "emulator/_data/schemas/dial.schema.json" in names and "emulator/_data/scenarios/default.yaml" in names
    assert any(name.startswith("emulator/_data/scenarios/audio/") for name in names)
    # Run from the unpacked wheel alone (not this checkout): its data comes from inside the package.
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    probe = "import emulator.resources as r; print(r.__file__); print(r.data_dir('schemas'))"
    where = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    module, schemas = where.stdout.split()
    assert module.startswith(str(unpacked)) and schemas == str(unpacked / "emulator" / "_data" / "schemas")
    listed = subprocess.run(
        [sys.executable, "-m", "emulator", "scenario", "list"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert listed.returncode == 0, listed.stderr
    assert {line.split()[0] for line in listed.stdout.splitlines()} >= {"default", "ivr-menu", "stay-on-line"}


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
