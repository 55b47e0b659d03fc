"""The register's event row, written in the same transaction as the change it records."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.utils import timezone

from obligations.register.models import Event, Evidence, Obligation, ObligationCycle


def record_event(
    *,
    actor: User,
    obligation: Obligation,
    kind: str,
    source: str,
    cycle: ObligationCycle | None = None,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    evidence: Evidence | None = None,
    due_date: dt.date | None = None,
) -> Event:
    return Event.objects.create(
        due_date=due_date,
        evidence=evidence,
        obligation=obligation,
        cycle=cycle,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        at=timezone.now(),
        reason=reason,
        source=source,
    )
