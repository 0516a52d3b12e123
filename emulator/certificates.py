"""Making the local CA and its api.telnyx.com certificate (``emulator/local_ca.py`` says when). The only module
that loads cryptography: a start-up that finds them in place never does."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emulator.local_ca import (
    CA_DAYS,
    CA_FILE,
    CA_KEY_FILE,
    CERT_DAYS,
    CERT_FILE,
    CERT_KEY_FILE,
    DNS_NAMES,
    IP_ADDRESSES,
    TELNYX_API_HOST,
    CertError,
    utc_datetime,
)


def make_ca(folder: Path) -> None:
    """A new CA in ``folder`` (its server certificate, signed by the old one, is removed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "telnyx-emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, "telnyx-emulator local CA"),
        ]
    )
    now = utc_datetime()
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
    _write_private(folder / CA_KEY_FILE, _key_pem(key))
    (folder / CA_FILE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / CERT_FILE).unlink(missing_ok=True)  # signed by the old CA, if any


def make_server_cert(folder: Path) -> None:
    """The api.telnyx.com certificate, signed by the CA of ``folder``."""
    ca_key = serialization.load_pem_private_key((folder / CA_KEY_FILE).read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{folder / CA_KEY_FILE}: not the EC key this CA was made with")
    ca = x509.load_pem_x509_certificate((folder / CA_FILE).read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = utc_datetime()
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
    _write_private(folder / CERT_KEY_FILE, _key_pem(key))
    (folder / CERT_FILE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


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
