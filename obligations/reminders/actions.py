"""Writes to reminder lead times, rescheduling an organisation's reminders."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from obligations.access.models import Organisation, validate_lead_days
from obligations.catalogue.models import Duty
from obligations.register.models import ObligationCycle
from obligations.reminders.models import LeadTime


@transaction.atomic
def set_lead_days(
    *,
    actor: User,
    organisation: Organisation,
    lead_days: list[int],
    duty: Duty | None = None,
) -> None:
    """Change the organisation's lead times (or one duty's); its open cycles are rescheduled
    at the next sweep."""
    validate_lead_days(lead_days)
    if duty is None:
        Organisation.objects.filter(pk=organisation.pk).update(reminder_lead_days=lead_days)
    else:
        LeadTime.objects.update_or_create(
            organisation=organisation, duty=duty, defaults={"lead_days": lead_days}
        )
    reschedule_organisation(organisation)


def reschedule_organisation(organisation: Organisation) -> None:
    """Every watched cycle of the organisation is looked at again by the next sweep."""
    ObligationCycle.objects.filter(
        obligation__provider__organisation=organisation, next_reminder_at__isnull=False
    ).update(next_reminder_at=timezone.now())
