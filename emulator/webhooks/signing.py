"""Webhook signing: Telnyx's Ed25519 scheme, with the emulator's own keypair.

Telnyx signs ``f"{telnyx-timestamp}|{raw body}"`` with Ed25519 and sends the base64 signature in
``telnyx-signature-ed25519``. Receivers verify with the base64 of the raw 32-byte public key
(``TELNYX_PUBLIC_KEY`` in the official SDKs), so that is the form :meth:`SigningKey.public_key_b64`
returns. The private key is kept as the base64 of its raw 32-byte seed, one line, so a key file (or an
environment variable) can hold it and the public key survives restarts.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

import nacl.signing

from emulator.config import ConfigError

SEED_BYTES = 32


class SigningKey:
    """An Ed25519 private key that signs webhook bodies the way Telnyx does."""

    __slots__ = ("_key",)

    # PyNaCl (libsodium) rather than cryptography: the same Ed25519, for about 1 MB of memory instead of 7.
    def __init__(self, key: nacl.signing.SigningKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_private_b64(cls, value: str) -> SigningKey:
        """The key whose raw 32-byte seed is base64 ``value``; ``ValueError`` when it is not one."""
        try:
            seed = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"not base64: {exc}") from None
        if len(seed) != SEED_BYTES:
            raise ValueError(f"expected base64 of a {SEED_BYTES}-byte Ed25519 seed, got {len(seed)} bytes")
        return cls(nacl.signing.SigningKey(seed))

    def private_b64(self) -> str:
        return base64.b64encode(bytes(self._key)).decode("ascii")  # bytes() of a key is its seed

    def public_key_b64(self) -> str:
        """Base64 of the raw 32-byte public key: the value for ``TELNYX_PUBLIC_KEY``."""
        return base64.b64encode(bytes(self._key.verify_key)).decode("ascii")

    def sign(self, timestamp: str, body: bytes) -> str:
        """Base64 of the Ed25519 signature over ``f"{timestamp}|"`` followed by ``body``: Telnyx's scheme."""
        return self.sign_message(f"{timestamp}|".encode() + body)

    def sign_message(self, message: bytes) -> str:
        """Base64 of the plain Ed25519 signature over exactly ``message`` (``sign`` builds the message)."""
        return base64.b64encode(self._key.sign(message).signature).decode("ascii")

    def __repr__(self) -> str:  # never show the private half
        return f"SigningKey(public={self.public_key_b64()})"


def load_or_create_key(path: Path) -> SigningKey:
    """The key stored in ``path``, or a new one written there (mode 0600, parents created).

    A file that exists but does not hold a key is an error, not a reason to replace it: replacing it
    would silently change the public key every receiver was configured with.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    key = SigningKey.generate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _read_key(path)
    except OSError as exc:
        raise ConfigError(f"signing key file {path}: cannot create it: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.private_b64() + "\n")
    return key


def _read_key(path: Path) -> SigningKey:
    """``FileNotFoundError`` passes through; any other problem is a ``ConfigError`` naming the file."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"signing key file {path}: cannot read it: {reason}") from None
    try:
        return SigningKey.from_private_b64(text)
    except ValueError as exc:
        raise ConfigError(
            f"signing key file {path}: not a signing key ({exc}); it should hold one line, the base64 of a "
            f"32-byte Ed25519 seed. Delete it to have a new key made (receivers then need the new public key)."
        ) from None
