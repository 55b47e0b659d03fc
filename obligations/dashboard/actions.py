"""Writes of the dashboard's stored counts (the nightly task and the backfill command)."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from obligations.dashboard.models import ComplianceCount, ComplianceFill
from obligations.dates import london_today, month_ends
from obligations.register.models import Obligation
from obligations.register.selectors import states_at

# The dashboard's trend: this many month ends, the last one today.
TREND_MONTHS = 12


def fill_trend_counts(*, today: dt.date, months: int = TREND_MONTHS) -> list[dt.date]:
    """Store the counts of the trend's past month ends up to `today` (the nightly task; the
    backfill command with more months). Returns the month ends it filled."""
    return fill_compliance_counts(month_ends(today, months)[:-1])


def fill_compliance_counts(days: list[dt.date]) -> list[dt.date]:
    """Write ComplianceCount rows for the past days that have none yet, from the events (one
    query for all of them), and return those days. Idempotent and safe to run twice at once:
    a past day's counts never change, and the unique constraints keep the first writer's
    rows. Today and later are never stored: their counts can still change."""
    today = london_today()
    filled = set(ComplianceFill.objects.filter(day__in=days).values_list("day", flat=True))
    missing = sorted(d for d in days if d not in filled and d < today)
    if not missing:
        return []
    counts = states_at(missing, Obligation.objects.all(), by_service=True)
    with transaction.atomic():
        rows = []
        for (provider, service, day), (met, total) in counts.items():
            if total and provider is not None:
                rows.append(
                    ComplianceCount(
                        provider_id=provider, service_id=service, day=day, met=met, applicable=total
                    )
                )
        ComplianceCount.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
        ComplianceFill.objects.bulk_create(
            [ComplianceFill(day=day) for day in missing], ignore_conflicts=True
        )
    return missing
