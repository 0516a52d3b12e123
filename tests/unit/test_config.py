from __future__ import annotations

from pathlib import Path

import pytest

from emulator.config import ConfigError, Settings


def test_defaults_are_local_and_real_time():
    settings = Settings()
    assert (settings.host, settings.port, settings.speed, settings.scenario) == ("127.0.0.1", 8000, 1.0, "default")
    assert settings.api_keys == frozenset()


def test_environment_variables_are_read_and_overrides_win():
    environ = {
        "TELNYX_EMULATOR_PORT": "9001",
        "TELNYX_EMULATOR_SPEED": "0",
        "TELNYX_EMULATOR_API_KEYS": "a, b,,",
        "TELNYX_EMULATOR_INSECURE_TLS": "yes",
        "TELNYX_EMULATOR_CA_FILE": "/tmp/ca.pem",
        "TELNYX_EMULATOR_LOG_LEVEL": "DEBUG",
    }
    settings = Settings.from_env(environ, port=9002, host=None)
    assert settings.port == 9002 and settings.speed == 0 and settings.host == "127.0.0.1"
    assert settings.api_keys == frozenset({"a", "b"}) and settings.insecure_tls is True
    assert settings.ca_file == Path("/tmp/ca.pem") and settings.log_level == "debug"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TELNYX_EMULATOR_PORT": "http"}, "TELNYX_EMULATOR_PORT: expected an integer, got 'http'"),
        ({"TELNYX_EMULATOR_SPEED": "fast"}, "TELNYX_EMULATOR_SPEED: expected a number, got 'fast'"),
        ({"TELNYX_EMULATOR_INSECURE_TLS": "maybe"}, "TELNYX_EMULATOR_INSECURE_TLS: expected true or false"),
        ({"TELNYX_EMULATOR_SPEED": "-1"}, "speed: must be >= 0"),
        ({"TELNYX_EMULATOR_CALL_CODEC": "OPUS"}, "call_codec: must be one of PCMU, PCMA, G722, L16"),
        ({"TELNYX_EMULATOR_PORT": "70000"}, "port: must be 0..65535"),
        ({"TELNYX_EMULATOR_SPEED": "nan"}, "speed: must be a finite number, got nan"),
        ({"TELNYX_EMULATOR_SPEED": "inf"}, "speed: must be a finite number, got inf"),
        ({"TELNYX_EMULATOR_WEBHOOK_TIMEOUT": "nan"}, "webhook_timeout: must be a finite number"),
        ({"TELNYX_EMULATOR_HISTORY": "0"}, "history: must be >= 1, got 0"),
    ],
)
def test_bad_settings_name_the_variable(environ, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(environ)


def test_seed_comes_from_the_environment_or_the_serve_flag(monkeypatch):
    from emulator import cli

    assert Settings.from_env({"TELNYX_EMULATOR_SEED": "42"}).seed == 42
    served: list[Settings] = []
    monkeypatch.setattr(cli, "serve", lambda settings: served.append(settings) or 0)
    assert cli.main(["--seed", "7"], environ={"TELNYX_EMULATOR_SEED": "42"}) == 0
    assert served[0].seed == 7
    with pytest.raises(ConfigError, match="seed: must be 0..9223372036854775807, got -1"):
        Settings(seed=-1)


def _serve_parser():
    import argparse

    from emulator import cli

    (subparsers,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return subparsers.choices["serve"]


def test_every_setting_has_an_environment_variable_and_its_flag_help_names_it():
    from dataclasses import fields

    from emulator.config import ENV_PREFIX, SETTINGS

    assert [spec.name for spec in SETTINGS] == [option.name for option in fields(Settings)]
    serve = _serve_parser()
    flags = {action.dest: action for action in serve._actions}
    for spec in SETTINGS:
        assert spec.env == ENV_PREFIX + spec.name.upper()
        if spec.flag is None:
            # Environment only: no flag, but serve --help lists the variable below the options.
            assert spec.name not in flags and spec.env in serve.epilog
            continue
        assert flags[spec.name].option_strings == [spec.flag]
        assert flags[spec.name].help.endswith(f"env {spec.env.removeprefix(ENV_PREFIX)})")
    # Docs, scripts and containers use these names: a renamed field must not rename them silently.
    assert sorted(spec.flag for spec in SETTINGS if spec.flag) == sorted(
        "--host --port --speed --scenario --scenario-dir --scenario-map --api-key --call-codec --ca-file "
        "--insecure --connect-timeout --max-body-bytes --max-streams --media-workers --stream-max-duration "
        "--stream-send-timeout "
        "--shutdown-grace --history --log-level --strict-calls --webhook-url --webhook-failover-url "
        "--webhook-timeout --texml-url --signing-key-file --cert-dir --tls-port --no-proxy --recordings-dir "
        "--media-dir --seed".split()
    )
    assert {spec.env.removeprefix(ENV_PREFIX) for spec in SETTINGS if spec.flag is None} == {
        "COMMAND_ID_WINDOW",
        "WEBHOOK_RETRY_DELAYS",
        "SIGNING_KEY",
    }


def test_flag_help_shows_the_default_readably():
    helps = {action.dest: action.help for action in _serve_parser()._actions}
    assert helps["stream_max_duration"].endswith("(default 14400; env STREAM_MAX_DURATION)")
    assert helps["signing_key_file"].endswith("(default ~/.telnyx-emulator/signing-key; env SIGNING_KEY_FILE)")
    assert helps["api_keys"].endswith("(default any key; env API_KEYS)")
    assert helps["webhook_url"].endswith("(env WEBHOOK_URL)") and "default" not in helps["webhook_url"]


def test_environment_only_settings_are_read():
    settings = Settings.from_env(
        {
            "TELNYX_EMULATOR_WEBHOOK_RETRY_DELAYS": "0.5, 3",
            "TELNYX_EMULATOR_SIGNING_KEY": "a2V5",
            "TELNYX_EMULATOR_COMMAND_ID_WINDOW": "30",
        }
    )
    assert settings.webhook_retry_delays == (0.5, 3.0) and settings.signing_key == "a2V5"
    assert settings.command_id_window == 30.0


def test_a_webhook_url_without_a_scheme_is_refused_naming_the_setting():
    from emulator.config import ConfigError

    with pytest.raises(ConfigError, match=r"^webhook_url: must be an http:// or https:// URL, got 'localhost:5000'$"):
        Settings(webhook_url="localhost:5000")
    with pytest.raises(ConfigError, match="^webhook_failover_url: "):
        Settings.from_env({"TELNYX_EMULATOR_WEBHOOK_FAILOVER_URL": "ftp://x"})
    assert Settings(webhook_url="HTTPS://example.com/hooks").webhook_url == "HTTPS://example.com/hooks"


def test_unknown_emulator_variables_are_named_with_the_closest_setting():
    from emulator.config import unknown_variables

    environ = {
        "TELNYX_EMULATOR_SPEEED": "0",
        "TELNYX_EMULATOR_PORT": "1",
        "TELNYX_EMULATOR_TTS_CACHE": "/c",
        "PATH": "",
    }
    assert unknown_variables(environ) == [
        "TELNYX_EMULATOR_SPEEED is not a setting; ignored (did you mean TELNYX_EMULATOR_SPEED?)"
    ]
