"""The access log and sign-in throttling: who signed in or failed, from where, and when to
refuse further attempts."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from obligations.access.models import AccessAction, AccessLog


class TooManyFailures(PermissionDenied):
    """Sign-in or token attempts refused for a while after too many failures."""


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address: REMOTE_ADDR, or behind TRUSTED_PROXIES reverse proxies the address
    the outermost of ours saw (the last hops of X-Forwarded-For; earlier ones can be forged)."""
    address = request.META.get("REMOTE_ADDR", "")
    if settings.TRUSTED_PROXIES:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= settings.TRUSTED_PROXIES:
            address = hops[-settings.TRUSTED_PROXIES]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def record_access(
    *,
    user: Any,
    action: str,
    request: HttpRequest | None,
    organisation_ids: Iterable[int] | None = None,
    description: str = "",
    username: str = "",
) -> None:
    """Append one access log row, or one per organisation the access concerned, so that each
    organisation's admins see exactly the rows about their own data."""
    person = user if user is not None and user.is_authenticated else None
    common = {
        "at": timezone.now(),
        "action": action,
        "user": person,
        "username": (username or (person.get_username() if person else ""))[:150],
        "description": description[:500],
        "ip_address": client_ip(request) if request is not None else None,
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:500] if request else "",
    }
    ids: list[int | None] = [*(organisation_ids or [])] or [None]
    AccessLog.objects.bulk_create([AccessLog(organisation_id=pk, **common) for pk in ids])


def _recent(action: str, request: HttpRequest) -> QuerySet[AccessLog]:
    since = timezone.now() - dt.timedelta(minutes=settings.SIGN_IN_LOCKOUT_MINUTES)
    return AccessLog.objects.filter(action=action, ip_address=client_ip(request), at__gte=since)


def check_sign_in_allowed(*, username: str, request: HttpRequest) -> None:
    """Refuse a sign-in attempt (before the password is checked) after too many failures for
    this name from this address, or from this address for any names (password spraying).
    Counted from the access log, so every web process sees the same count."""
    counts = _recent(AccessAction.SIGN_IN_FAILED, request).aggregate(
        address=Count("pk"), name=Count("pk", filter=Q(username=username))
    )
    if (
        counts["name"] >= settings.SIGN_IN_FAILURES_PER_NAME
        or counts["address"] >= settings.SIGN_IN_FAILURES_PER_ADDRESS
    ):
        record_access(
            user=None, action=AccessAction.SIGN_IN_THROTTLED, request=request, username=username
        )
        raise TooManyFailures(
            "Too many failed sign-ins from this address. Sign-in is paused for "
            f"{settings.SIGN_IN_LOCKOUT_MINUTES} minutes; then try again, or ask an "
            "administrator to reset your password."
        )


def check_token_attempt_allowed(*, request: HttpRequest) -> None:
    """Refuse API calls from an address that recently sent too many unknown or revoked keys."""
    if _recent(AccessAction.TOKEN_FAILED, request).count() >= settings.SIGN_IN_FAILURES_PER_ADDRESS:
        raise TooManyFailures(
            "Too many refused API keys from this address; try again in "
            f"{settings.SIGN_IN_LOCKOUT_MINUTES} minutes."
        )
