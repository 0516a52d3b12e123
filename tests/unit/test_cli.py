from __future__ import annotations

import pytest

from emulator import cli
from emulator.config import Settings


@pytest.fixture
def served(monkeypatch):
    """Capture the settings `serve` would run with instead of starting uvicorn."""
    calls: list[Settings] = []
    monkeypatch.setattr(cli, "serve", lambda settings: calls.append(settings) or 0)
    return calls


def test_bare_command_serves_with_defaults(served):
    assert cli.main([], environ={}) == 0
    assert served == [Settings()]


def test_flags_and_environment(served):
    argv = ["--port", "9000", "--speed", "0", "--api-key", "k1", "--api-key", "k2", "--insecure"]
    assert cli.main(argv, environ={"TELNYX_EMULATOR_HOST": "0.0.0.0", "TELNYX_EMULATOR_PORT": "1"}) == 0
    (settings,) = served
    assert settings.port == 9000 and settings.host == "0.0.0.0" and settings.speed == 0
    assert settings.api_keys == frozenset({"k1", "k2"}) and settings.insecure_tls


def test_explicit_serve_subcommand(served):
    assert cli.main(["serve", "--scenario", "tone"], environ={}) == 0
    assert served[0].scenario == "tone"


def test_bad_setting_exits_2_with_one_line(capsys):
    assert cli.main([], environ={"TELNYX_EMULATOR_SPEED": "fast"}) == 2
    err = capsys.readouterr().err
    assert err == "telnyx-emulator: error: TELNYX_EMULATOR_SPEED: expected a number, got 'fast'\n"


def test_bad_scenario_file_exits_2_naming_file_and_field(tmp_path, capsys, monkeypatch):
    (tmp_path / "broken.yaml").write_text("inbound:\n  - tone: {frequency: abc, ms: 100}\n")
    monkeypatch.setattr("uvicorn.Server.run", lambda self: pytest.fail("must not start"))
    assert cli.main(["--scenario-dir", str(tmp_path), "--scenario", "broken"], environ={}) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("telnyx-emulator: error: ") and "broken.yaml:2:" in err and "frequency" in err


def test_unknown_scenario_exits_2(capsys, monkeypatch):
    monkeypatch.setattr("uvicorn.Server.run", lambda self: pytest.fail("must not start"))
    assert cli.main(["--scenario", "nope"], environ={}) == 2
    assert "nope: no such scenario" in capsys.readouterr().err


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--speed", "x"], environ={})
    assert info.value.code == 2


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"], environ={})
    assert info.value.code == 0 and "telnyx-emulator" in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, "not a certificate\n"])
def test_a_ca_file_that_cannot_be_loaded_exits_2_naming_it(tmp_path, capsys, monkeypatch, content):
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_text(content)
    monkeypatch.setattr("uvicorn.Server.run", lambda self: pytest.fail("must not start"))
    env = {
        "TELNYX_EMULATOR_SIGNING_KEY_FILE": str(tmp_path / "key"),
        "TELNYX_EMULATOR_CERT_DIR": str(tmp_path / "certs"),
    }
    assert cli.main(["--ca-file", str(ca)], environ=env) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"telnyx-emulator: error: ca_file: cannot load {ca}: ") and err.count("\n") == 1


def test_a_port_already_in_use_exits_1(tmp_path, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            "TELNYX_EMULATOR_SIGNING_KEY_FILE": str(tmp_path / "key"),
            "TELNYX_EMULATOR_CERT_DIR": str(tmp_path / "certs"),
        }
        assert cli.main(["--port", str(port)], environ=env) == 1
    out, err = capsys.readouterr()
    assert err == f"telnyx-emulator: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert "Telnyx API at" not in out  # no banner for a server that never listened


def test_public_key_prints_the_webhook_key_without_serving(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("uvicorn.Server.run", lambda self: pytest.fail("must not start"))
    env = {"TELNYX_EMULATOR_SIGNING_KEY_FILE": str(tmp_path / "key")}
    assert cli.main(["public-key"], environ=env) == 0
    first = capsys.readouterr().out
    assert cli.main(["public-key"], environ=env) == 0
    assert capsys.readouterr().out == first and len(first.strip()) == 44  # the same key, kept in the file
    assert cli.main(["public-key"], environ={"TELNYX_EMULATOR_SIGNING_KEY": "bm90IGEga2V5"}) == 2
