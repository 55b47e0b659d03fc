"""Password reset by e-mail: each request on record and throttled per address, each password
set through a reset link on record."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest
from django.utils import timezone

from obligations.access.models import AccessAction, AccessLog
from obligations.access.signin import client_ip, record_access

WINDOW = dt.timedelta(hours=1)


def allow_reset_request(*, email: str, request: HttpRequest) -> bool:
    """Record a reset request for `email` (whether or not an account has it) and say whether
    to send the mail: not when the address was asked for PASSWORD_RESETS_PER_HOUR times in the
    last hour (so the form cannot flood someone's inbox), nor when this client asked for
    SIGN_IN_FAILURES_PER_ADDRESS addresses in that hour. The page answers the same either way,
    so it tells nobody whether the address exists or was throttled."""
    asked = AccessLog.objects.filter(
        action=AccessAction.PASSWORD_RESET_ASKED, at__gte=timezone.now() - WINDOW
    ).aggregate(
        email=Count("pk", filter=Q(username__iexact=email[:150])),
        client=Count("pk", filter=Q(ip_address=client_ip(request))),
    )
    allowed = (
        asked["email"] < settings.PASSWORD_RESETS_PER_HOUR
        and asked["client"] < settings.SIGN_IN_FAILURES_PER_ADDRESS
    )
    record_access(
        user=None,
        action=AccessAction.PASSWORD_RESET_ASKED,
        request=request,
        username=email,
        description=f"Password reset asked for {email!r}"
        + ("" if allowed else ": no mail sent, asked too often in the last hour"),
    )
    return allowed


def set_password_by_reset(*, user: User, password: str, request: HttpRequest | None) -> None:
    """The user, holding a valid reset link, sets a new password: on record with it. (Their
    other sessions end: Django ties a session to the password.)"""
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        record_access(
            user=user,
            action=AccessAction.PASSWORD_CHANGED,
            request=request,
            description=f"{user.get_username()} set a new password through a reset link",
        )
