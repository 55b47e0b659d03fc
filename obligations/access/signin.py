"""The access log and sign-in throttling: who signed in or failed, from where, when to
refuse further attempts, and an admin lifting a lockout before it ends."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from obligations.access.models import AccessAction, AccessLog, Membership, Role
from obligations.access.selectors import active_memberships
from obligations.access.users import is_system_user


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
    username: str | None = None,
    ip_address: str | Literal["the request's"] | None = "the request's",
) -> None:
    """Append one access log row, or one per organisation the access concerned, so that each
    organisation's admins see exactly the rows about their own data. The address is the
    request's unless the row is about another one (a lifted lockout names the address it
    frees, or None for every address)."""
    person = user if user is not None and user.is_authenticated else None
    common = {
        "at": timezone.now(),
        "action": action,
        "user": person,
        # The person's own name unless the row names another (an empty one: every name).
        "username": (username if username is not None else person.get_username() if person else "")[
            :150
        ],
        "description": description[:500],
        "ip_address": (client_ip(request) if request is not None else None)
        if ip_address == "the request's"
        else ip_address,
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:500] if request else "",
    }
    ids: list[int | None] = [*(organisation_ids or [])] or [None]
    AccessLog.objects.bulk_create([AccessLog(organisation_id=pk, **common) for pk in ids])


def _recent(action: str, request: HttpRequest) -> QuerySet[AccessLog]:
    return AccessLog.objects.filter(action=action, ip_address=client_ip(request), at__gte=_since())


def _since() -> dt.datetime:
    return timezone.now() - dt.timedelta(minutes=settings.SIGN_IN_LOCKOUT_MINUTES)


def check_sign_in_allowed(*, username: str, request: HttpRequest) -> None:
    """Refuse a sign-in attempt (before the password is checked) after too many failures for
    this name from this address, or from this address for any names (password spraying).
    Counted from the access log, so every web process sees the same count; failures before
    the latest lift of the lockout (lift_lockout) do not count."""
    address = client_ip(request)
    lifts = AccessLog.objects.filter(action=AccessAction.LOCKOUT_LIFTED, at__gte=_since())
    for_address = Q(username="", ip_address=address)
    lifted = lifts.aggregate(
        name=Max(
            "at",
            filter=Q(username=username) & (Q(ip_address=address) | Q(ip_address__isnull=True))
            | for_address,
        ),
        address=Max("at", filter=for_address),
    )
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    counts = _recent(AccessAction.SIGN_IN_FAILED, request).aggregate(
        address=Count("pk", filter=Q(at__gt=lifted["address"] or epoch)),
        name=Count("pk", filter=Q(username=username, at__gt=lifted["name"] or epoch)),
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
            "administrator to lift the lockout (a password reset does not)."
        )


def lift_lockout(
    *, actor: User, username: str, ip_address: str | None, request: HttpRequest | None
) -> None:
    """Let `username` (from `ip_address`, or from anywhere when None) try again at once; with
    no name, every name from `ip_address`. Appends a LOCKOUT_LIFTED row (the log stays
    append-only): its user is the actor, its name and address those lifted. Operators lift
    any; an organisation's admins only their members' names, never a whole address (that
    would reopen password spraying across other organisations' names)."""
    if not username and not ip_address:
        raise ValidationError("Name a user, an address, or both.")
    operator = actor.is_superuser or is_system_user(actor)
    members = Membership.objects.active().filter(user__username=username)
    if not operator:
        if not username:
            raise PermissionDenied("Only operators lift a lockout for every name at an address.")
        administered = active_memberships(actor, (Role.ADMIN,)).values("organisation_id")
        members = members.filter(organisation__in=administered)
        if not members.exists():
            raise PermissionDenied(f"{username!r} is not a member of an organisation you admin.")
    where = f"from {ip_address}" if ip_address else "from any address"
    by = f"by {actor.get_username()}" + (
        f" (from {client_ip(request)})" if request is not None else ""
    )
    # One row per organisation of the member, so that each one's admins see it.
    record_access(
        user=actor,
        action=AccessAction.LOCKOUT_LIFTED,
        request=request,
        organisation_ids=members.values_list("organisation_id", flat=True),
        description=f"Sign-in lockout lifted for {username or 'every name'!r} {where} {by}",
        username=username,
        ip_address=ip_address,
    )


def check_token_attempt_allowed(*, request: HttpRequest) -> None:
    """Refuse API calls from an address that recently sent too many unknown or revoked keys."""
    if _recent(AccessAction.TOKEN_FAILED, request).count() >= settings.SIGN_IN_FAILURES_PER_ADDRESS:
        raise TooManyFailures(
            "Too many refused API keys from this address; try again in "
            f"{settings.SIGN_IN_LOCKOUT_MINUTES} minutes."
        )
