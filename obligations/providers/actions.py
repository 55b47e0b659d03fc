"""Writes to services and providers: save a service (applying the catalogue when its profile
changes), revenue changes, significant changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Model

from obligations.catalogue.models import Feature, RegisterCategory
from obligations.dates import check_plausible_dates, display, london_today
from obligations.notices.actions import links_for, sync_notice_obligations
from obligations.notices.models import NoticeKind, OfcomNotice
from obligations.providers.models import ChangeStatus, Provider, Service, SignificantChange
from obligations.register.actions import set_due_date
from obligations.register.apply import ApplyResult, apply_catalogue, apply_provider_duties
from obligations.register.cycles import in_force, open_cycle
from obligations.register.models import Obligation
from obligations.register.states import CycleTrigger


@transaction.atomic
def save_service(
    *,
    actor: User,
    service: Service,
    source: str,
    categories: Iterable[RegisterCategory] | None = None,
    features: Iterable[Feature] | None = None,
) -> ApplyResult:
    """Create or change a service's profile (None leaves a M2M field as it is), then bring
    its register in line with the profile: duties a change brings in start to apply today.

    Only what changed is written: a profile sent back as it is stored leaves no history row."""
    stored = Service.objects.filter(pk=service.pk).first() if service.pk else None
    service._history_user = actor  # type: ignore[attr-defined]
    service.full_clean(exclude=["categories", "features"], validate_unique=True)
    changed = stored is not None and _profile_changed(stored, service)
    if stored is None or changed:
        service.save()
    # set() writes (and simple-history records) only what differs.
    if categories is not None:
        changed |= _set_changed(service.categories, categories, stored)
    if features is not None:
        changed |= _set_changed(service.features, features, stored)
    # A duty the change brings in starts today; a save that changes nothing (or creates the
    # service, whose duties start from its launch) gives no day.
    return apply_catalogue(
        actor=actor,
        service=service,
        source=source,
        changed_on=london_today() if changed else None,
        launch_was=stored.launch_date
        if stored is not None and stored.launch_date != service.launch_date
        else "unchanged",
    )


def _set_changed(manager: Any, values: Iterable[Model], stored: Service | None) -> bool:
    """Set a M2M field to `values`; whether that changed a stored service's profile."""
    values = list(values)
    was = set(manager.values_list("pk", flat=True)) if stored is not None else set()
    manager.set(values)
    return stored is not None and was != {v.pk for v in values}


def _profile_changed(stored: Service, service: Service) -> bool:
    return any(
        getattr(stored, field.attname) != getattr(service, field.attname)
        for field in Service._meta.concrete_fields
        if field.name not in ("created_at", "updated_at")
    )


@transaction.atomic
def revenue_changed(*, actor: User, provider: Provider, source: str) -> None:
    """The provider's revenue or accounting facts changed: its fees obligations follow, and so
    does the check of any open penalty against the cap."""
    apply_provider_duties(actor=actor, provider=provider, source=source)
    penalised = OfcomNotice.objects.filter(
        service__provider=provider,
        closed_on__isnull=True,
        kind__in=(NoticeKind.CONFIRMATION, NoticeKind.PENALTY),
    ).select_related("service__provider")
    for notice in penalised:
        links, ended = links_for(notice)
        sync_notice_obligations(actor=actor, notice=notice, links=links, ended=ended, source=source)


@transaction.atomic
def record_significant_change(
    *,
    actor: User,
    service: Service,
    description: str,
    planned_for: dt.date,
    source: str,
) -> SignificantChange:
    """Record a planned significant change; the assessments the Act requires before it fall due
    the day before.

    A closed cycle is left as it was and a new cycle opens; an open cycle is brought forward
    instead, so the team has one piece of work, not two.
    """
    check_plausible_dates(planned_for=planned_for)
    change = SignificantChange.objects.create(
        service=service,
        description=description,
        planned_for=planned_for,
        status=ChangeStatus.PLANNED,
        recorded_by=actor,
    )
    due = planned_for - dt.timedelta(days=1)
    note = f"Before the planned change on {display(planned_for)}: {description}"
    obligations = (
        Obligation.objects.filter(service=service, applicable=True)
        .select_related("duty", "current_cycle")
        .select_for_update(of=("self",))
    )
    for obligation in obligations:
        if not obligation.duty.deadline.get("before_significant_change"):
            continue
        if not in_force(obligation) or due < (obligation.applies_since or due):
            continue  # the duty does not apply yet when the change is made
        cycle = obligation.current_cycle
        if cycle is None or cycle.is_closed:
            open_cycle(
                actor=actor,
                obligation=obligation,
                due=due,
                trigger=CycleTrigger.SIGNIFICANT_CHANGE,
                source=source,
                note=note,
            )
        elif cycle.due_date is None or cycle.due_date > due:
            set_due_date(actor=actor, cycle=cycle, due=due, reason=note, source=source)
    return change
