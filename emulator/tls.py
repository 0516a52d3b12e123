"""TLS contexts for the emulator's outgoing connections: webhooks (httpx) and ``wss://`` stream targets.

Loading the CA certificates is most of a context's cost (~55 ms on a slow machine), and each emulator
the pytest fixture starts, and each control-plane client, would pay it again: one context per process
(``shared_tls_context``) serves them all. It is only read after it is built: ALPN is set once here, the
one setting httpx writes to the context it is given.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

from emulator.config import ConfigError, Settings


def system_tls_context() -> ssl.SSLContext:
    """Certificates verified against the system's CAs (honouring SSL_CERT_FILE and SSL_CERT_DIR).

    Where Python finds no CA file (python.org's macOS builds before "Install Certificates", images without
    ca-certificates), certifi's bundle, which httpx brings, is loaded too, as httpx itself would use it.
    ALPN is set once to HTTP/1.1, what both webhooks and WebSocket handshakes speak: httpx sets it on the
    context it is given at each connection, and the context is shared with wss:// targets."""
    context = ssl.create_default_context()
    if not context.cert_store_stats()["x509_ca"]:
        import certifi

        context.load_verify_locations(cafile=certifi.where())
    context.set_alpn_protocols(["http/1.1"])
    return context


def tls_context(settings: Settings, system: ssl.SSLContext) -> ssl.SSLContext:
    """The client TLS context for wss:// stream targets: ``system`` itself unless an option changes it."""
    return stream_tls_context(settings.ca_file, settings.insecure_tls, system)


def stream_tls_context(ca_file: Path | None, insecure: bool, system: ssl.SSLContext) -> ssl.SSLContext:
    """``tls_context`` from the two options that shape it (a media worker builds its own from them)."""
    if ca_file is None and not insecure:
        return system
    context = system_tls_context()
    if ca_file is not None:
        try:  # in addition to the system's CAs
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:  # missing, unreadable, or not PEM certificates
            raise ConfigError(f"ca_file: cannot load {ca_file}: {exc.strerror or exc}") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """The process's ``system_tls_context``, built on first use."""
    return system_tls_context()


def describe_connect_error(exc: BaseException, is_tls: bool) -> str:
    """Why an outgoing connection could not open, in words: a wss:// target that does not speak TLS (a plain
    ws:// server resets or closes the handshake) says so rather than an empty ConnectionResetError."""
    if is_tls and isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if is_tls and isinstance(exc, ConnectionResetError | EOFError | ConnectionAbortedError):
        return "TLS handshake failed: the target closed the connection (a plain ws:// server behind a wss:// URL?)"
    return f"{type(exc).__name__}: {exc}"
