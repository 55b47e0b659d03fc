"""The register's low-level writes: create an obligation with its first cycle, open, close
and update cycles, and ask the reminder sweep to look again."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from obligations.catalogue.commencement import in_force_on
from obligations.dates import london_today
from obligations.register.events import record_event
from obligations.register.models import Obligation, ObligationCycle
from obligations.register.states import CycleStatus, EventKind


def open_cycle(
    *,
    actor: User,
    obligation: Obligation,
    due: dt.date | None,
    trigger: str,
    source: str,
    note: str = "",
    period_start: dt.date | None = None,
) -> ObligationCycle:
    today = london_today()
    previous = obligation.current_cycle
    if period_start is None:
        period_start = today
        if previous is not None and previous.period_start >= today:
            # A cycle that opened and closed today already holds today's period.
            period_start = previous.period_start + dt.timedelta(days=1)
    cycle = ObligationCycle.objects.create(
        obligation=obligation,
        period_start=period_start,
        due_date=due,
        trigger=trigger,
        trigger_note=note,
        next_reminder_at=timezone.now(),
    )
    if previous is not None:
        # Only the current cycle is watched by the reminder sweep.
        ObligationCycle.objects.filter(pk=previous.pk).update(next_reminder_at=None)
    obligation.current_cycle = cycle
    obligation.status, obligation.due_date = cycle.status, cycle.due_date
    obligation.save(update_fields=["current_cycle", "status", "due_date", "updated_at"])
    record_event(
        actor=actor,
        obligation=obligation,
        cycle=cycle,
        kind=EventKind.CYCLE_OPENED,
        to_status=cycle.status,
        source=source,
        reason=note or cycle.get_trigger_display(),
        due_date=due,
    )
    return cycle


def create_obligation(
    *,
    actor: User,
    source: str,
    reason: str,
    fields: dict[str, Any],
    first_cycle: tuple[dt.date | None, str] | None,
    note: str = "",
) -> Obligation:
    """Create an obligation from `fields`, its CREATED event (with `reason`) and, given
    `first_cycle` as (due date, trigger), its first cycle. Fees pass None: they open one
    cycle per charging year themselves."""
    obligation = Obligation.objects.create(**fields)
    record_event(
        actor=actor, obligation=obligation, kind=EventKind.CREATED, source=source, reason=reason
    )
    if first_cycle is not None:
        due, trigger = first_cycle
        open_cycle(
            actor=actor, obligation=obligation, due=due, trigger=trigger, source=source, note=note
        )
    return obligation


def close_cycle_not_applicable(
    *, actor: User, obligation: Obligation, reason: str, source: str
) -> None:
    cycle = obligation.current_cycle
    if cycle is None or cycle.is_closed:
        return
    # Conditional on the status we read, so a concurrent transition cannot be overwritten.
    if update_cycle(
        cycle,
        only_if=cycle.status,
        status=CycleStatus.NOT_APPLICABLE,
        status_reason=reason,
        closed_at=timezone.now(),
        updated_at=timezone.now(),
        next_reminder_at=None,
    ):
        record_event(
            actor=actor,
            obligation=obligation,
            cycle=cycle,
            kind=EventKind.STATUS,
            from_status=cycle.status,
            to_status=CycleStatus.NOT_APPLICABLE,
            reason=reason,
            source=source,
        )


def mark_not_applicable(*, actor: User, obligation: Obligation, reason: str, source: str) -> None:
    """The obligation stops applying: kept, with the reason, and its open cycle closed."""
    obligation.applicable = False
    obligation.not_applicable_reason = reason
    obligation.save(update_fields=["applicable", "not_applicable_reason", "updated_at"])
    record_event(
        actor=actor,
        obligation=obligation,
        kind=EventKind.NOT_APPLICABLE,
        source=source,
        reason=reason,
    )
    close_cycle_not_applicable(actor=actor, obligation=obligation, reason=reason, source=source)


def mark_applicable_again(*, actor: User, obligation: Obligation, why: str, source: str) -> None:
    obligation.applicable, obligation.not_applicable_reason, obligation.why = True, "", why
    obligation.save(update_fields=["applicable", "not_applicable_reason", "why", "updated_at"])
    record_event(
        actor=actor, obligation=obligation, kind=EventKind.REAPPLIED, source=source, reason=why
    )


def in_force(obligation: Obligation) -> bool:
    """Whether the obligation's duty is in force today (its duty row is loaded, so no query:
    `in_force_on`, the rule `in_force_q` asks as a query)."""
    return in_force_on(obligation.duty.effective_from, london_today())


def recheck_reminders(cycle: ObligationCycle | None) -> None:
    """Something about the cycle changed: the next reminder sweep works out its dates again."""
    if cycle is not None:
        ObligationCycle.objects.filter(pk=cycle.pk).update(next_reminder_at=timezone.now())


def update_cycle(cycle: ObligationCycle, *, only_if: str | None = None, **changes: Any) -> bool:
    """Change a cycle (only while its status is still `only_if`, when given, so of two people
    acting at once one wins) and copy its new status or due date onto its obligation, which
    keeps them while the cycle is current. The caller holds the transaction."""
    cycles = ObligationCycle.objects.filter(pk=cycle.pk)
    if only_if is not None:
        cycles = cycles.filter(status=only_if)
    if not cycles.update(**changes):
        return False
    mirrored = {k: v for k, v in changes.items() if k in ("status", "due_date")}
    if mirrored:
        Obligation.objects.filter(current_cycle=cycle.pk).update(**mirrored)
    return True
