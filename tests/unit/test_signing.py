"""Ed25519 webhook signing: known vectors, the key file, and the official SDK's verifier."""

from __future__ import annotations

import base64
import json
import stat
import time

import pytest
import telnyx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from emulator.config import ConfigError
from emulator.webhooks.signing import SigningKey, load_or_create_key

# RFC 8032 section 7.1, TEST 1: the empty message.
RFC_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC_SIGNATURE = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def b64(hex_string: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_string)).decode()


def verify(public_b64: str, signature_b64: str, message: bytes) -> None:
    Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64)).verify(base64.b64decode(signature_b64), message)


# -- SigningKey ------------------------------------------------------------------------------


def test_rfc8032_vector_1():
    key = SigningKey.from_private_b64(b64(RFC_SECRET))
    assert key.public_key_b64() == b64(RFC_PUBLIC)
    assert key.sign_message(b"") == b64(RFC_SIGNATURE)
    assert key.private_b64() == b64(RFC_SECRET)


def test_sign_covers_timestamp_pipe_body():
    key = SigningKey.from_private_b64(b64(RFC_SECRET))
    body = b'{"data":{"event_type":"call.answered"}}'
    signature = key.sign("1700000000", body)
    assert signature == key.sign_message(b"1700000000|" + body)  # Ed25519 is deterministic
    assert len(base64.b64decode(signature)) == 64
    verify(key.public_key_b64(), signature, b"1700000000|" + body)


def test_round_trip_and_tampering():
    key = SigningKey.generate()
    body = '{"data":{"payload":{"from":"+1555 ✓"}}}'.encode()
    signature = key.sign("1700000001", body)
    verify(key.public_key_b64(), signature, b"1700000001|" + body)
    for message in (b"1700000001|" + body + b" ", b"1700000002|" + body, body):
        with pytest.raises(InvalidSignature):
            verify(key.public_key_b64(), signature, message)
    with pytest.raises(InvalidSignature):
        verify(SigningKey.generate().public_key_b64(), signature, b"1700000001|" + body)


def test_public_key_is_raw_32_bytes_base64():
    key = SigningKey.generate()
    assert len(base64.b64decode(key.public_key_b64(), validate=True)) == 32
    assert len(base64.b64decode(key.private_b64(), validate=True)) == 32


def test_private_b64_round_trip_and_whitespace():
    key = SigningKey.generate()
    again = SigningKey.from_private_b64(f"  {key.private_b64()}\n")
    assert again.public_key_b64() == key.public_key_b64()
    assert again.sign("1", b"x") == key.sign("1", b"x")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "not base64"),
        ("", "got 0 bytes"),
        (base64.b64encode(b"short").decode(), "got 5 bytes"),
        (base64.b64encode(bytes(64)).decode(), "got 64 bytes"),
    ],
)
def test_from_private_b64_rejects(value, message):
    with pytest.raises(ValueError, match=message):
        SigningKey.from_private_b64(value)


def test_repr_hides_the_private_key():
    key = SigningKey.generate()
    assert key.private_b64() not in repr(key)
    assert key.public_key_b64() in repr(key)


# -- key file --------------------------------------------------------------------------------


def test_load_or_create_key_creates_then_reloads(tmp_path):
    path = tmp_path / "nested" / "dir" / "signing-key"
    created = load_or_create_key(path)
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text == created.private_b64() + "\n"
    reloaded = load_or_create_key(path)
    assert reloaded.public_key_b64() == created.public_key_b64()


def test_load_or_create_key_reads_a_given_key(tmp_path):
    path = tmp_path / "signing-key"
    path.write_text(b64(RFC_SECRET))
    assert load_or_create_key(path).public_key_b64() == b64(RFC_PUBLIC)


def test_corrupt_key_file_is_a_config_error_and_is_kept(tmp_path):
    path = tmp_path / "signing-key"
    path.write_text("garbage\n")
    with pytest.raises(ConfigError) as info:
        load_or_create_key(path)
    message = str(info.value)
    assert str(path) in message
    assert "not a signing key" in message
    assert path.read_text() == "garbage\n"  # never replaced behind the user's back


def test_key_path_that_is_a_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=str(tmp_path)):
        load_or_create_key(tmp_path)


def test_key_file_under_a_plain_file_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = blocker / "signing-key"
    with pytest.raises(ConfigError) as info:
        load_or_create_key(path)
    assert str(path) in str(info.value)


# -- the official SDK's verifier -------------------------------------------------------------


def sdk_client(public_key: str) -> telnyx.Telnyx:
    return telnyx.Telnyx(api_key="test", public_key=public_key, base_url="http://127.0.0.1:1/v2")


def signed_webhook(key: SigningKey, timestamp: str | None = None) -> tuple[str, dict[str, str]]:
    body = json.dumps(
        {
            "data": {
                "record_type": "event",
                "event_type": "call.answered",
                "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
                "occurred_at": "2021-12-15T14:06:32.059436Z",
                "payload": {"call_control_id": "v3:abc", "state": "answered"},
            },
            "meta": {"attempt": 1, "delivered_to": "http://127.0.0.1/webhooks"},
        },
        separators=(",", ":"),
    ).encode()
    timestamp = timestamp or str(int(time.time()))
    headers = {"Telnyx-Signature-Ed25519": key.sign(timestamp, body), "Telnyx-Timestamp": timestamp}
    return body.decode(), headers


@pytest.mark.sdk
def test_sdk_unwrap_accepts_our_signature():
    key = SigningKey.generate()
    body, headers = signed_webhook(key)
    with sdk_client(key.public_key_b64()) as client:
        event = client.webhooks.unwrap(body, headers=headers)
    assert event.data.event_type == "call.answered"
    assert event.data.id == "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0"


# Importing telnyx.lib monkey-patches client.webhooks.unwrap: it then raises WebhookVerificationError (an
# Exception, not a ValueError) with the same messages. Match on the message so test order does not matter.
REJECTED = (ValueError, Exception)


@pytest.mark.sdk
def test_sdk_unwrap_rejects_tampering_wrong_key_and_stale_timestamp():
    key = SigningKey.generate()
    body, headers = signed_webhook(key)
    with sdk_client(key.public_key_b64()) as client:
        with pytest.raises(REJECTED, match="does not match"):
            client.webhooks.unwrap(body.replace("answered", "hangup"), headers=headers)
        with pytest.raises(REJECTED, match="does not match"):
            client.webhooks.unwrap(body, headers=headers, key=SigningKey.generate().public_key_b64())
        stale_body, stale_headers = signed_webhook(key, str(int(time.time()) - 400))
        with pytest.raises(REJECTED, match="too old"):
            client.webhooks.unwrap(stale_body, headers=stale_headers)


@pytest.mark.sdk
def test_sdk_lib_verifier_accepts_our_signature():
    from telnyx.lib.webhook_verification import WebhookVerificationError, verify_webhook_signature

    key = SigningKey.generate()
    body, headers = signed_webhook(key)
    verify_webhook_signature(body.encode(), headers, key.public_key_b64())
    with pytest.raises(WebhookVerificationError):
        verify_webhook_signature(body + " ", headers, key.public_key_b64())
