"""Webhook addresses and signing secrets: checked, encrypted at rest, signed over.

A Slack or Teams incoming-webhook address is itself the credential (whoever has it can post to
the channel), so it is stored encrypted and never shown again: the admin shows its host and
last few characters alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ValidationError

from obligations.reminders.transport import LOOPBACK_NAMES, AddressRefused, check_host

MAX_URL_LENGTH = 2000
SIGNATURE_HEADER = "X-OSA-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def _derived_key() -> bytes:
    """A Fernet key from SECRET_KEY, for deployments that set no dedicated key."""
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"osa-tracker notifications",
        info=b"webhook addresses and signing secrets",
    ).derive(settings.SECRET_KEY.encode())
    return base64.urlsafe_b64encode(derived)


def _fernet() -> MultiFernet:
    keys: list[str | bytes] = [*settings.NOTIFICATION_ENCRYPTION_KEYS] or [_derived_key()]
    return MultiFernet([Fernet(key) for key in keys])


def seal(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def unseal(token: str) -> str:
    """Raises cryptography.fernet.InvalidToken if no configured key opens it."""
    return _fernet().decrypt(token.encode()).decode()


def reseal(token: str) -> str:
    """The same secret under the first key (after a new key was put first)."""
    return _fernet().rotate(token.encode()).decode()


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 over "<timestamp>." + body (README)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def validate_webhook_url(url: str) -> None:
    """https to a public host; plain http to this machine only when allowed (settings)."""
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"The address is too long (at most {MAX_URL_LENGTH} characters).")
    if any(c in url for c in "\r\n\t ") or not url.isprintable():
        raise ValidationError("The address must be one line, with no spaces.")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise ValidationError("The address must begin https:// and name a host.")
    if parts.username or parts.password:
        raise ValidationError("The address must not carry a user name or password.")
    loopback = loopback_allowed(parts.scheme)
    if parts.scheme == "http" and not (loopback and host in LOOPBACK_NAMES):
        raise ValidationError("The address must begin https://.")
    # What a name resolves to is checked at each post (transport.py): names are not looked
    # up here, where the network may not be the one the worker posts from.
    try:
        check_host(host, loopback_allowed=loopback)
    except AddressRefused as refused:
        raise ValidationError(str(refused)) from None


def loopback_allowed(scheme: str) -> bool:
    """Plain http to this machine, for trying a receiver out (settings)."""
    return scheme == "http" and settings.WEBHOOK_ALLOW_LOOPBACK_HTTP


def url_hint(url: str) -> str:
    """What the admin shows of a stored address: its host and last four characters."""
    return f"{urlsplit(url).hostname} …{url[-4:]}"
