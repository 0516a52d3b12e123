"""TLS contexts: one system context shared by webhooks and wss:// targets unless an option changes the targets'."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from emulator import tls as tls_module
from emulator.config import ConfigError, Settings
from emulator.tls import shared_tls_context, system_tls_context, tls_context


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


def test_the_shared_context_offers_http_1_1_by_alpn_from_the_start():
    # httpx sets ALPN on the context it is given; set once up front, wss:// handshakes do not depend on
    # whether a webhook went out before them.
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    server_context.set_alpn_protocols(["h2", "http/1.1"])
    client_context = system_tls_context()
    ca.configure_trust(client_context)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def accept() -> None:
            conn, _ = listener.accept()
            with server_context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

        server = threading.Thread(target=accept, daemon=True)
        server.start()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client_context.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.selected_alpn_protocol() == "http/1.1"
                tls.sendall(b"x")
        server.join(5)


def test_certifi_is_loaded_where_python_finds_no_system_cas(monkeypatch):
    monkeypatch.setattr(tls_module.ssl, "create_default_context", lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    assert system_tls_context().cert_store_stats()["x509_ca"] > 0


def test_every_emulator_of_a_process_shares_one_context():
    # Loading CA certificates costs ~55 ms; the pytest fixture starts an emulator per test.
    from emulator.app import create_app

    first = create_app(Settings()).state.emulator
    second = create_app(Settings()).state.emulator
    assert first.runtime.ssl_context is second.runtime.ssl_context is shared_tls_context()
    assert create_app(Settings(insecure_tls=True)).state.emulator.runtime.ssl_context is not shared_tls_context()
