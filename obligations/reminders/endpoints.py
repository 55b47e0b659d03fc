"""Writes to an organisation's team chat webhooks, by its admins: each records who made or
changed it, and a test message who asked for it."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from obligations.access.models import Organisation, Role
from obligations.access.selectors import has_role
from obligations.dates import display, london_today
from obligations.reminders.models import (
    TEST_MESSAGE,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookKind,
)
from obligations.reminders.outbox import enqueue_delivery
from obligations.reminders.sealed import (
    new_signing_secret,
    reseal,
    seal,
    url_hint,
    validate_webhook_url,
)

# What an admin may change besides the address.
SETTINGS = ("name", "digests", "escalations", "notice_deadlines", "active")


def _check_admin(actor: User, organisation_id: int) -> None:
    if not (actor.is_superuser or has_role(actor, (Role.ADMIN,), organisation_id)):
        raise PermissionDenied("Only the organisation's admins manage its webhooks.")


@transaction.atomic
def create_webhook(
    *,
    actor: User,
    organisation: Organisation,
    kind: str,
    url: str,
    name: str,
    digests: bool = True,
    escalations: bool = True,
    notice_deadlines: bool = True,
    active: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """A new webhook, and a signed one's signing secret ("" for the others): stored
    encrypted, this is the only time anyone sees it."""
    _check_admin(actor, organisation.pk)
    validate_webhook_url(url)
    secret = new_signing_secret() if kind == WebhookKind.SIGNED else ""
    endpoint = WebhookEndpoint(
        organisation=organisation,
        kind=kind,
        name=name,
        digests=digests,
        escalations=escalations,
        notice_deadlines=notice_deadlines,
        active=active,
        url_sealed=seal(url),
        url_hint=url_hint(url),
        secret_sealed=seal(secret) if secret else "",
        created_by=actor,
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint, secret


@transaction.atomic
def change_webhook(
    *, actor: User, endpoint: WebhookEndpoint, url: str = "", **values: object
) -> bool:
    """Change a webhook's settings (SETTINGS), and its address if one is given (empty: kept;
    the stored one is never shown, so a new one is typed in full). True if anything changed;
    a form sent back unchanged writes nothing."""
    _check_admin(actor, endpoint.organisation_id)
    unknown = set(values) - set(SETTINGS)
    if unknown:
        raise ValueError(f"Not a webhook setting: {', '.join(sorted(unknown))}")
    stored = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    changes = {name: value for name, value in values.items() if getattr(stored, name) != value}
    if url:
        validate_webhook_url(url)
        changes.update(url_sealed=seal(url), url_hint=url_hint(url))
    if not changes:
        return False
    for name, value in changes.items():
        setattr(stored, name, value)
    stored.changed_by = actor
    stored.changed_at = timezone.now()
    stored.full_clean()
    stored.save(update_fields=[*changes, "changed_by", "changed_at"])
    endpoint.refresh_from_db()
    return True


@transaction.atomic
def send_test_message(*, actor: User, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A test message through the outbox, as any reminder goes: a worker posts it."""
    _check_admin(actor, endpoint.organisation_id)
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        kind=TEST_MESSAGE,
        deadline=london_today(),
        reason=(
            f"A test message for “{endpoint.name}”, asked for by "
            f"{actor.get_full_name() or actor.get_username()} on {display(london_today())}. "
            "Reminders will look like this."
        ),
        requested_by=actor,
        created_at=now,
    )
    transaction.on_commit(enqueue_delivery, robust=True)
    return delivery


@transaction.atomic
def reseal_webhooks() -> int:
    """Encrypt every stored address and secret again under the first configured key, after a
    new one was put first (settings.NOTIFICATION_ENCRYPTION_KEYS); how many were. What they
    say is unchanged, so no one is recorded as changing them."""
    endpoints = list(WebhookEndpoint.objects.select_for_update().order_by("pk"))
    for endpoint in endpoints:
        endpoint.url_sealed = reseal(endpoint.url_sealed)
        if endpoint.secret_sealed:
            endpoint.secret_sealed = reseal(endpoint.secret_sealed)
    WebhookEndpoint.objects.bulk_update(endpoints, ["url_sealed", "secret_sealed"])
    return len(endpoints)
