"""``telnyx-emulator ca`` and ``public-key``: the local CA's path and the webhook key, without serving."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from emulator import PROG
from emulator.config import ConfigError, Settings


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _ca_parser(subparsers)
    _public_key_parser(subparsers)


def _ca_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ca = subparsers.add_parser(
        "ca",
        help="print the path of the local CA certificate (made on first use) that unmodified apps trust",
        description="Make (on first use) and print the path of the emulator's local CA certificate. Trust it in "
        "an app (SSL_CERT_FILE / REQUESTS_CA_BUNDLE for Python, NODE_EXTRA_CA_CERTS for Node) and set "
        "HTTPS_PROXY=http://127.0.0.1:8000: the app's requests to https://api.telnyx.com reach the emulator. "
        "The CA can only vouch for api.telnyx.com, localhost and 127.0.0.1 (X.509 name constraints).",
        epilog="examples:\n  export HTTPS_PROXY=http://127.0.0.1:8000 NODE_EXTRA_CA_CERTS=$(telnyx-emulator ca)\n"
        "  export HTTPS_PROXY=http://127.0.0.1:8000 SSL_CERT_FILE=$(telnyx-emulator ca --bundle)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ca.add_argument(
        "--bundle",
        action="store_true",
        help="print a bundle of the public CAs plus the emulator's instead: for SSL_CERT_FILE / REQUESTS_CA_BUNDLE, "
        "which replace a process's CAs",
    )
    ca.add_argument(
        "--cert-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the folder it lives in (default ~/.telnyx-emulator; env TELNYX_EMULATOR_CERT_DIR)",
    )


def _public_key_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subparsers.add_parser(
        "public-key",
        help="print the public key that verifies the emulator's webhooks (TELNYX_PUBLIC_KEY), without serving",
        description="Print the base64 Ed25519 public key of the webhook signing key the emulator uses (env "
        "TELNYX_EMULATOR_SIGNING_KEY, else the key file, made on first use), for the app's TELNYX_PUBLIC_KEY.",
        epilog="example: export TELNYX_PUBLIC_KEY=$(telnyx-emulator public-key)",
    )


def print_public_key(environ: Mapping[str, str]) -> int:
    from emulator.app import signing_key

    try:
        print(signing_key(Settings.from_env(environ)).public_key_b64())
    except (ConfigError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    return 0


def print_ca(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from emulator.local_ca import CertError, LocalCA

    folder = args.cert_dir or Settings.from_env(environ).cert_dir
    try:
        ca = LocalCA(folder)
        print(ca.bundle() if args.bundle else ca.ensure())
    except CertError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0
