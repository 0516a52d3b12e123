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
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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
                self._make_ca()
            if self._cert_needs_renewal():
                self._make_cert()
        except OSError as exc:
            raise CertError(f"{exc.filename or self.folder}: {exc.strerror or exc}") from None
        return self.ca_path

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

    # -- making them -------------------------------------------------------------------------

    def _make_ca(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "telnyx-emulator"),
                x509.NameAttribute(NameOID.COMMON_NAME, "telnyx-emulator local CA"),
            ]
        )
        now = _now()
        permitted: list[x509.GeneralName] = [x509.DNSName(host) for host in DNS_NAMES]
        permitted += [x509.IPAddress(ipaddress.IPv4Network(f"{ip}/32")) for ip in IP_ADDRESSES]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.folder / CA_KEY_FILE, _key_pem(key))
        (self.folder / CA_FILE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (self.folder / CERT_FILE).unlink(missing_ok=True)  # signed by the old CA, if any

    def _cert_needs_renewal(self) -> bool:
        path = self.folder / CERT_FILE
        if not path.is_file() or not (self.folder / CERT_KEY_FILE).is_file():
            return True
        try:
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
            issuer = x509.load_pem_x509_certificate(self.ca_path.read_bytes())
        except ValueError:
            return True
        return certificate.issuer != issuer.subject or certificate.not_valid_after_utc - RENEW_BEFORE < _now()

    def _make_cert(self) -> None:
        ca_key = serialization.load_pem_private_key((self.folder / CA_KEY_FILE).read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise CertError(f"{self.folder / CA_KEY_FILE}: not the EC key this CA was made with")
        ca = x509.load_pem_x509_certificate(self.ca_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        names: list[x509.GeneralName] = [x509.DNSName(host) for host in DNS_NAMES]
        names += [x509.IPAddress(ip) for ip in IP_ADDRESSES]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TELNYX_API_HOST)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(self.folder / CERT_KEY_FILE, _key_pem(key))
        (self.folder / CERT_FILE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner alone, created so from the start (no window where it is not)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
