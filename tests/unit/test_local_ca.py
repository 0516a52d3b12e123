"""The local CA: made once, name-constrained to api.telnyx.com, localhost and 127.0.0.1, its key private; the
server certificate it signs verifies for api.telnyx.com."""

from __future__ import annotations

import stat

from cryptography import x509

from emulator.local_ca import CA_KEY_FILE, CERT_FILE, CERT_KEY_FILE, LocalCA


def test_the_ca_is_made_once_name_constrained_and_its_keys_are_private(tmp_path):
    ca = LocalCA(tmp_path / "certs")
    path = ca.ensure()
    first = path.read_bytes()
    assert ca.ensure() == path and path.read_bytes() == first  # kept across runs
    certificate = x509.load_pem_x509_certificate(first)
    constraints = certificate.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    permitted = {str(name.value) for name in constraints.value.permitted_subtrees or ()}
    assert permitted == {"api.telnyx.com", "localhost", "127.0.0.1/32"}
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    for name in (CA_KEY_FILE, CERT_KEY_FILE):
        assert stat.S_IMODE((tmp_path / "certs" / name).stat().st_mode) == 0o600


def test_the_server_certificate_is_signed_by_the_ca_for_api_telnyx_com_and_remade_if_lost(tmp_path):
    ca = LocalCA(tmp_path)
    ca.ensure()
    certificate = x509.load_pem_x509_certificate((tmp_path / CERT_FILE).read_bytes())
    issuer = x509.load_pem_x509_certificate(ca.ca_path.read_bytes())
    certificate.verify_directly_issued_by(issuer)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["api.telnyx.com", "localhost"]
    (tmp_path / CERT_FILE).unlink()
    assert ca.server_context() is not None and (tmp_path / CERT_FILE).is_file()


def test_the_bundle_is_the_public_cas_and_this_one(tmp_path):
    ca = LocalCA(tmp_path)
    bundle = ca.bundle().read_bytes()
    assert bundle.endswith(ca.ca_path.read_bytes()) and bundle.count(b"BEGIN CERTIFICATE") > 50
