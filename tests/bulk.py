"""Large registers, fast: bulk inserts that bypass the services (for query-count tests and
`make bench`). The rows are what the services would write; nothing here is used by the app.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from obligations import models as m

# A deterministic spread of statuses: mostly open work, some met, a little not applicable.
STATUS_CYCLE = (
    m.CycleStatus.NOT_STARTED,
    m.CycleStatus.IN_PROGRESS,
    m.CycleStatus.NOT_STARTED,
    m.CycleStatus.READY_FOR_REVIEW,
    m.CycleStatus.MET,
    m.CycleStatus.IN_PROGRESS,
    m.CycleStatus.SENT_BACK,
    m.CycleStatus.MET,
    m.CycleStatus.NOT_STARTED,
    m.CycleStatus.NOT_APPLICABLE,
)


@dataclass
class Register:
    organisation: m.Organisation
    providers: list[m.Provider]
    services: list[m.Service]
    obligations: int


def service_duties() -> list[m.Duty]:
    """The catalogue's per-service duties (not the provider's, not a notice's)."""
    return [
        d
        for d in m.Duty.objects.filter(retired_at__isnull=True, scope=m.DutyScope.SERVICE)
        if "notice" not in d.applies
    ]


@transaction.atomic
def make_register(
    *,
    organisation: m.Organisation,
    obligations: int,
    today: dt.date,
    owners: list[User] | None = None,
    services_per_provider: int = 20,
    statuses: tuple[str, ...] | None = STATUS_CYCLE,
    due_spread: tuple[int, int] = (-400, 400),
    events_per_obligation: int = 0,
    name_prefix: str = "Bulk",
) -> Register:
    """About `obligations` obligations over as many services as the catalogue's duties need,
    each with a current cycle due somewhere in `due_spread` days from today."""
    duties = service_duties()
    per_service = len(duties)
    n_services = max(1, -(-obligations // per_service))
    existing = m.Service.objects.filter(provider__organisation=organisation).count()
    providers = m.Provider.objects.bulk_create(
        [
            m.Provider(organisation=organisation, name=f"{name_prefix} provider {existing + i}")
            for i in range(-(-n_services // services_per_provider))
        ]
    )
    services = m.Service.objects.bulk_create(
        [
            m.Service(
                provider=providers[i // services_per_provider],
                name=f"{name_prefix} service {existing + i}",
                user_to_user=True,
                uk_monthly_users=100_000 + i,
                children_likely_to_access=bool(i % 2),
            )
            for i in range(n_services)
        ]
    )
    now = timezone.now()
    rows: list[m.Obligation] = []
    for s_index, service in enumerate(services):
        for d_index, duty in enumerate(duties):
            if len(rows) >= obligations:
                break
            rows.append(
                m.Obligation(
                    provider_id=service.provider_id,
                    service=service,
                    duty=duty,
                    owner=owners[(s_index + d_index) % len(owners)] if owners else None,
                    why="Generated for a large register.",
                )
            )
    created = m.Obligation.objects.bulk_create(rows, batch_size=2000)
    low, high = due_spread
    span = high - low + 1
    cycles = []
    for i, obligation in enumerate(created):
        status = statuses[i % len(statuses)] if statuses else m.CycleStatus.NOT_STARTED
        closed = status in m.CLOSED_STATUSES
        cycles.append(
            m.ObligationCycle(
                obligation=obligation,
                period_start=today - dt.timedelta(days=30),
                due_date=today + dt.timedelta(days=low + (i * 37) % span),
                status=status,
                trigger=m.CycleTrigger.INITIAL,
                status_reason="Generated." if status == m.CycleStatus.NOT_APPLICABLE else "",
                closed_at=now if closed else None,
                next_reminder_at=now,
            )
        )
    m.ObligationCycle.objects.bulk_create(cycles, batch_size=2000)
    m.Obligation.objects.filter(service__in=services).update(
        current_cycle=Subquery(
            m.ObligationCycle.objects.filter(obligation=OuterRef("pk")).values("pk")[:1]
        )
    )
    if events_per_obligation:
        _events(created, events_per_obligation, now)
    return Register(organisation, providers, services, len(created))


def _events(obligations: list[m.Obligation], per: int, now: Any) -> None:
    from obligations.services import get_system_user

    actor = get_system_user()
    m.Event.objects.bulk_create(
        [
            m.Event(
                obligation=o,
                kind=m.EventKind.STATUS if k else m.EventKind.CREATED,
                from_status=m.CycleStatus.NOT_STARTED if k else "",
                to_status=m.CycleStatus.IN_PROGRESS if k else "",
                actor=actor,
                at=now - dt.timedelta(days=per - k),
                reason="Generated history.",
                source=m.EventSource.COMMAND,
            )
            for o in obligations
            for k in range(per)
        ],
        batch_size=2000,
    )


def grower(
    organisation: m.Organisation, owners: list[User], *, events_per_obligation: int = 2
) -> Any:
    """A `grow(n)` for `assert_constant_queries`: tops the organisation's register up to n."""
    made = [0]

    def grow(n: int) -> None:
        make_register(
            organisation=organisation,
            obligations=n - made[0],
            today=dt.date(2026, 11, 24),
            owners=owners,
            events_per_obligation=events_per_obligation,
            name_prefix=f"Size{n}",
        )
        made[0] = n

    return grow
