"""Two-factor sign-in with time-based codes (django-otp's TOTP devices): enrolling a device,
the code a password sign-in then asks for, and who must have one."""

from __future__ import annotations

import secrets
import time
from binascii import unhexlify
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from obligations.access.models import AccessAction, Membership, Role
from obligations.access.selectors import has_role
from obligations.access.signin import record_access

# The backends whose sign-ins are a password alone. A session signed in through any other
# (single sign-on: the identity provider did its own second factor) counts as verified.
PASSWORD_BACKENDS = frozenset({"django.contrib.auth.backends.ModelBackend"})
# One 30-second step either side, for a phone's clock that is a little off.
TOLERANCE = 1


def confirmed_device(user: Any) -> TOTPDevice | None:
    if getattr(user, "pk", None) is None:
        return None
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).first()


def new_secret() -> str:
    """A 20-byte secret, hex as TOTPDevice stores it."""
    return secrets.token_hex(20)


def provisioning_uri(user: User, key: str) -> str:
    """The otpauth:// address an authenticator app reads (as text or as a QR code)."""
    return TOTPDevice(user=user, key=key, name="unsaved").config_url


def _as_number(code: str) -> int | None:
    code = code.replace(" ", "")
    return int(code) if code.isdigit() and len(code) == 6 else None


def check_sign_in_code(*, user: User, code: str, request: HttpRequest | None) -> TOTPDevice | None:
    """The user's device, when they have one and `code` is its current code; None when they
    have none. A missing or wrong code is a failed sign-in (logged, so the throttle counts it)
    and refused with the wrong password's message, so that the form never confirms a
    password."""
    device = confirmed_device(user)
    if device is None:
        return None
    number = _as_number(code)
    if number is not None and device.verify_token(number):
        return device
    record_access(
        user=None,
        action=AccessAction.SIGN_IN_FAILED,
        request=request,
        username=user.get_username(),
        description=f"Sign-in failed for {user.get_username()!r} (user {user.pk}): "
        + ("wrong two-factor code" if code else "no two-factor code"),
    )
    raise ValidationError("wrong or missing two-factor code", code="invalid_login")


def enrol(*, actor: User, key: str, code: str, request: HttpRequest | None) -> TOTPDevice:
    """Give `actor` a confirmed device with `key`, once `code` shows their app holds it."""
    if confirmed_device(actor) is not None:
        raise ValidationError("You already have a two-factor device.")
    number = _as_number(code)
    totp = TOTP(unhexlify(key), step=30, t0=0, digits=6)
    totp.time = time.time()
    if number is None or not totp.verify(number, TOLERANCE):
        raise ValidationError({"code": ["That is not the app's current code: try the next one."]})
    with transaction.atomic():
        device = TOTPDevice.objects.create(
            user=actor,
            name="Authenticator app",
            key=key,
            confirmed=True,
            tolerance=TOLERANCE,
            drift=totp.drift,
            last_t=totp.t(),  # the code just used cannot sign in
        )
        record_access(
            user=actor,
            action=AccessAction.TWO_FACTOR_ENROLLED,
            request=request,
            description=f"{actor.get_username()} enrolled an authenticator app",
        )
    return device


def remove_device(*, actor: User, device: TOTPDevice, request: HttpRequest | None) -> None:
    """An operator removes someone's device (a lost phone): they enrol again at their next
    sign-in. Recorded in the access log for the device owner's organisations."""
    owner = device.user
    with transaction.atomic():
        device.delete()
        record_access(
            user=actor,
            action=AccessAction.TWO_FACTOR_REMOVED,
            request=request,
            organisation_ids=Membership.objects.active()
            .filter(user=owner)
            .values_list("organisation_id", flat=True),
            username=owner.get_username(),
            description=f"{actor.get_username()} removed {owner.get_username()}'s "
            "authenticator app; they enrol a new one at their next sign-in",
        )


def must_have_device(user: Any) -> bool:
    """Whether OTP_REQUIRED_FOR_ADMINS applies to the user: operators and organisation
    admins."""
    if not settings.OTP_REQUIRED_FOR_ADMINS or not user.is_authenticated:
        return False
    return bool(user.is_superuser) or has_role(user, (Role.ADMIN,))


def session_is_verified(request: HttpRequest) -> bool:
    """Whether this session passed a second factor: a code here (django-otp's
    is_verified), or a sign-in through a backend other than a password one, whose identity
    provider verified the user (the hook single sign-on relies on)."""
    backend = request.session.get(BACKEND_SESSION_KEY)
    if backend and backend not in PASSWORD_BACKENDS:
        return True
    is_verified = getattr(request.user, "is_verified", None)
    return bool(is_verified and is_verified())
