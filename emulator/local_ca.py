"""The emulator's local certificate authority: what lets an unmodified app talk to it as ``api.telnyx.com``.

``telnyx-emulator ca`` (and every ``serve``) makes, on first use, a CA certificate and key in the cert folder
(``~/.telnyx-emulator`` by default). The CA is **name-constrained** (RFC 5280 §4.2.1.10): it can only vouch
for ``api.telnyx.com``, ``localhost`` and ``127.0.0.1``, so trusting it puts no other site at risk, and its
key is readable by the user alone. The emulator presents a certificate for those names, signed by it, inside
the HTTPS tunnels its proxy opens (``emulator/api/proxy.py``).

Both are EC P-256: made in milliseconds, and accepted by every TLS stack an app may use.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

# The one host the proxy stands in for, and the names its certificate (and so the CA) may cover.
TELNYX_API_HOST = "api.telnyx.com"
DNS_NAMES = (TELNYX_API_HOST, "localhost")
IP_ADDRESSES = (ipaddress.IPv4Address("127.0.0.1"),)
CA_FILE, CA_KEY_FILE = "ca.pem", "ca-key.pem"
CERT_FILE, CERT_KEY_FILE = "api.telnyx.com.pem", "api.telnyx.com-key.pem"
BUNDLE_FILE = "ca-bundle.pem"
CA_DAYS = 3650
CERT_DAYS = 397  # the longest browsers and Apple's TLS stack accept for a server certificate
RENEW_BEFORE = datetime.timedelta(days=30)


class CertError(Exception):
    """The cert folder cannot be read or written; the message names the path."""


@dataclass(frozen=True, slots=True)
class LocalCA:
    folder: Path

    @property
    def ca_path(self) -> Path:
        return self.folder / CA_FILE

    def ensure(self) -> Path:
        """The CA certificate's path, making the CA and the server certificate if they are missing or the
        certificate is about to expire."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not (self.ca_path.is_file() and (self.folder / CA_KEY_FILE).is_file()):
                from emulator.certificates import make_ca  # cryptography is loaded only to make them

                make_ca(self.folder)
            if self._cert_needs_renewal():
                from emulator.certificates import make_server_cert

                make_server_cert(self.folder)
        except OSError as exc:
            raise CertError(f"{exc.filename or self.folder}: {exc.strerror or exc}") from None
        return self.ca_path

    def _cert_needs_renewal(self) -> bool:
        """Decided from the files alone, so a start-up with a certificate in place loads no X.509 library
        (cryptography costs ~10 MB of memory): the certificate is remade with a new CA (which deletes it)
        and when it is older than its validity less RENEW_BEFORE."""
        path = self.folder / CERT_FILE
        if not path.is_file() or not (self.folder / CERT_KEY_FILE).is_file():
            return True
        age = utc_datetime() - datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC)
        return age > datetime.timedelta(days=CERT_DAYS) - RENEW_BEFORE

    def bundle(self) -> Path:
        """A CA bundle of the public CAs (certifi's, what httpx and requests use) plus this CA, written next to
        it: ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE`` replace a process's CAs, and the app still talks to
        other HTTPS sites."""
        import certifi

        ca = self.ensure()
        path = self.folder / BUNDLE_FILE
        try:
            public = Path(certifi.where()).read_bytes()
            path.write_bytes(public.rstrip(b"\n") + b"\n" + ca.read_bytes())
        except OSError as exc:
            raise CertError(f"{exc.filename or path}: {exc.strerror or exc}") from None
        return path

    def server_cert(self) -> tuple[Path, Path]:
        """The api.telnyx.com certificate and its key, made if need be: for a listener of its own."""
        self.ensure()
        return self.folder / CERT_FILE, self.folder / CERT_KEY_FILE

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context presenting the certificate for api.telnyx.com (HTTP/1.1 only)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(*self.server_cert())
        context.set_alpn_protocols(["http/1.1"])
        return context


def utc_datetime() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
