"""API tokens and calendar-feed addresses: made only by and for their holder, stored as
hashes, revoked with a log entry naming who revoked them."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from obligations.access.models import ApiToken, CalendarFeed
from obligations.access.selectors import overseen_token_holders, scope
from obligations.providers.models import Service


def secret_hash(secret: str) -> str:
    """What is stored instead of an API key or a feed's secret: a copy of the database opens
    nothing. A fast hash is enough for a random 256-bit secret nobody chose."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_calendar_feed(
    *, actor: User, user: User, service: Service | None = None
) -> tuple[CalendarFeed, str]:
    """A new secret calendar address for the user's own deadlines, or for one service's.

    Returns the feed and its secret; the secret is not stored, so this is the only time
    anyone can see it.
    """
    if actor.pk != user.pk:
        raise PermissionDenied("A calendar feed can only be made by the person who will use it.")
    if service is not None and not scope(Service.objects.filter(pk=service.pk), user).exists():
        raise PermissionDenied(
            f"{user} is not a member of the organisation that runs {service}, "
            "so cannot have a calendar feed of its deadlines."
        )
    secret = secrets.token_urlsafe(32)
    feed = CalendarFeed.objects.create(user=user, service=service, secret_hash=secret_hash(secret))
    return feed, secret


@transaction.atomic
def revoke_calendar_feed(*, actor: User, feed: CalendarFeed) -> bool:
    """End a feed's address for good; True if this call revoked it (False: it already was).

    The owner or an operator may revoke; the admin log records who did.
    """
    if actor.pk != feed.user_id and not actor.is_superuser:
        raise PermissionDenied("Only the feed's owner or an operator can revoke it.")
    return _revoke(actor=actor, obj=feed, message="Revoked the calendar feed.")


def _revoke(*, actor: User, obj: CalendarFeed | ApiToken, message: str) -> bool:
    """Set revoked_at once. Conditional, so two revocations at once keep the first time and
    the admin log records who revoked it, once."""
    now = timezone.now()
    if not type(obj).objects.filter(pk=obj.pk, revoked_at__isnull=True).update(revoked_at=now):
        return False
    obj.revoked_at = now
    LogEntry.objects.log_actions(actor.pk, [obj], CHANGE, message)
    return True


def create_api_token(
    *,
    actor: User,
    name: str,
    read_only: bool = True,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new key for the actor, who holds it; the key itself is returned once, never stored.

    There is no way to make a token for someone else, not for an organisation admin, not for
    an operator: whoever held another's key would act in their name (approving their own
    submission as the other, four eyes defeated), and the events would name someone who did
    not act.
    """
    key = "osa_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=actor,
        name=name,
        prefix=key[:8],
        key_hash=secret_hash(key),
        read_only=read_only,
        expires_at=expires_at,
        created_by=actor,
    )
    return token, key


@transaction.atomic
def revoke_api_token(*, actor: User, token: ApiToken) -> bool:
    """Revoking is final: the key stops working at once. True if this call revoked it.

    The holder, an admin of an organisation the holder is a member of, or an operator."""
    if not overseen_token_holders(actor).filter(pk=token.user_id).exists():
        raise PermissionDenied(
            "Only the token's holder, an admin of one of their organisations, or an operator "
            "can revoke it."
        )
    return _revoke(actor=actor, obj=token, message="Revoked the API token.")
