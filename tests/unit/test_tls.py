"""TLS contexts: one system context shared by webhooks and wss:// targets unless an option changes the targets'."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from emulator.app import system_tls_context, tls_context
from emulator.config import ConfigError, Settings


def test_targets_share_the_system_context_by_default():
    system = system_tls_context()
    assert tls_context(Settings(), system) is system
    assert system.verify_mode is ssl.CERT_REQUIRED and system.check_hostname


def test_a_ca_file_is_trusted_in_addition_to_the_system_cas(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    system = system_tls_context()
    context = tls_context(Settings(ca_file=ca_file), system)
    assert context is not system
    assert context.cert_store_stats()["x509_ca"] == system.cert_store_stats()["x509_ca"] + 1


def test_insecure_applies_to_stream_targets_only():
    system = system_tls_context()
    context = tls_context(Settings(insecure_tls=True), system)
    assert context.verify_mode is ssl.CERT_NONE and not context.check_hostname
    assert system.verify_mode is ssl.CERT_REQUIRED  # webhooks keep verifying


def test_an_unloadable_ca_file_names_the_setting(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^ca_file: cannot load "):
        tls_context(Settings(ca_file=tmp_path / "missing.pem"), system_tls_context())
