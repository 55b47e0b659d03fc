"""The audit pack's signing key: from settings, or a development key made on first use."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEVELOPMENT_KEY = "audit-pack-signing-key.pem"


def signing_key() -> Ed25519PrivateKey:
    """The installation's key: from the environment, else (outside production) a development
    key made in VAR_DIR on first use."""
    inline, path = settings.AUDIT_PACK_SIGNING_KEY, settings.AUDIT_PACK_SIGNING_KEY_FILE
    if inline and path:
        raise ImproperlyConfigured(
            "Set AUDIT_PACK_SIGNING_KEY or AUDIT_PACK_SIGNING_KEY_FILE, not both."
        )
    if inline:
        # An environment variable often carries the PEM's line breaks as a literal "\n".
        pem, origin = inline.replace("\\n", "\n").encode(), "AUDIT_PACK_SIGNING_KEY"
    elif path:
        origin = f"AUDIT_PACK_SIGNING_KEY_FILE ({path})"
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise ImproperlyConfigured(f"{origin}: cannot read it: {exc.strerror}") from None
    elif settings.PRODUCTION:
        raise ImproperlyConfigured(
            "Audit packs are signed, and production has no signing key: set "
            "AUDIT_PACK_SIGNING_KEY to an Ed25519 private key in PEM (PKCS8), or "
            "AUDIT_PACK_SIGNING_KEY_FILE to the path of one "
            "(make one with `openssl genpkey -algorithm ed25519`)."
        )
    else:
        development = Path(settings.VAR_DIR) / DEVELOPMENT_KEY
        pem, origin = _development_key(development), str(development)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The error never quotes the key: it may be half right.
        raise ImproperlyConfigured(
            f"{origin}: not an unencrypted private key in PEM (PKCS8)."
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{origin}: the audit pack signing key must be Ed25519.")
    return key


def _development_key(path: Path) -> bytes:
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Written whole to a private (0600) temporary file, then linked into place: two
        # processes making it at once end up with one key, and neither reads half a file.
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".audit-pack-key-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_bytes()


def public_key_pem() -> str:
    """The installation's public key (SubjectPublicKeyInfo PEM), to verify its packs with."""
    return (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def load_public_key(pem: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError with a clear message otherwise."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("not a public key in PEM") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key
