"""Working an obligation: owner, due date and details."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from obligations.catalogue.commencement import in_force_on
from obligations.dates import RANGE_TEXT, display, is_plausible, london_today
from obligations.register.cycles import recheck_reminders, update_cycle
from obligations.register.events import record_event
from obligations.register.models import Obligation, ObligationCycle
from obligations.register.states import CycleStatus, EventKind, EventSource


@transaction.atomic
def assign_owner(
    *,
    actor: User,
    obligation: Obligation,
    owner: User | None,
    source: str,
) -> None:
    if obligation.owner_id == (owner.pk if owner else None):
        return
    before = obligation.owner
    obligation.owner = owner  # type: ignore[assignment]
    obligation.save(update_fields=["owner", "updated_at"])
    cycle = obligation.current_cycle
    recheck_reminders(cycle)
    record_event(
        actor=actor,
        obligation=obligation,
        cycle=cycle,
        kind=EventKind.OWNER_CHANGED,
        source=source,
        reason=f"Owner changed from {before or 'nobody'} to {owner or 'nobody'}.",
    )
    # A new owner during review could otherwise approve work they now own: back to in progress.
    if cycle is not None and update_cycle(
        cycle,
        only_if=CycleStatus.READY_FOR_REVIEW,
        status=CycleStatus.IN_PROGRESS,
        updated_at=timezone.now(),
    ):
        record_event(
            actor=actor,
            obligation=obligation,
            cycle=cycle,
            kind=EventKind.STATUS,
            from_status=CycleStatus.READY_FOR_REVIEW,
            to_status=CycleStatus.IN_PROGRESS,
            source=source,
            reason="The owner changed during review.",
        )


def due_date_refusal(obligation: Obligation, due: dt.date | None) -> str:
    """Why `due` cannot be the obligation's due date, in words ("" when it can): the one rule
    set_due_date and the import's planning both ask. A date must be one people type; a duty
    not yet in force has no due date; and none is due before the duty started to apply."""
    if due is None:
        return ""
    if not is_plausible(due):
        return f"Enter a date from {RANGE_TEXT}."
    effective = obligation.duty.effective_from
    if not in_force_on(effective, london_today()):
        expected = f" (expected from {display(effective)})" if effective else ""
        return f"The duty is not yet in force{expected}: it has no due date until it is."
    since = obligation.applies_since
    if since is not None and due < since:
        return (
            f"It cannot be due before the duty started to apply to it, on {display(since)}: "
            f"{obligation.applies_since_why}"
        )
    return ""


def _shown(day: dt.date | None) -> str:
    return display(day) if day else "none"


@transaction.atomic
def set_due_date(
    *,
    actor: User,
    cycle: ObligationCycle,
    due: dt.date | None,
    reason: str,
    source: str,
) -> None:
    """Move an open cycle's due date, saying why. A closed cycle keeps its dates."""
    if cycle.is_closed:
        raise ValueError("A closed cycle keeps its dates; open a new cycle instead.")
    refusal = due_date_refusal(cycle.obligation, due)
    if refusal:
        raise ValidationError({"due_date": [refusal]})
    if cycle.due_date == due:
        return
    old = cycle.due_date
    now = timezone.now()
    update_cycle(cycle, due_date=due, updated_at=now, next_reminder_at=now)
    cycle.due_date = due
    record_event(
        actor=actor,
        obligation=cycle.obligation,
        cycle=cycle,
        kind=EventKind.DUE_CHANGED,
        source=source,
        reason=f"Due date moved from {_shown(old)} to {_shown(due)}. {reason}",
        due_date=due,
    )


@transaction.atomic
def update_obligation_details(
    *,
    actor: User,
    obligation: Obligation,
    reason: str,
    source: str,
    notes: str | None = None,
    external_ref: str | None = None,
) -> None:
    """Change an obligation's notes and external reference; None leaves a field as it is.

    No event kind describes these fields, so the field history records who and why.
    """
    changed = []
    if notes is not None and notes != obligation.notes:
        obligation.notes = notes
        changed.append("notes")
    if external_ref is not None and external_ref != obligation.external_ref:
        obligation.external_ref = external_ref
        changed.append("external_ref")
    if not changed:
        return
    # The fields' own rules (length, one line), whoever calls: the admin's form is not the
    # only way in.
    obligation.clean_fields(
        exclude=[f.name for f in Obligation._meta.fields if f.name not in changed]
    )
    obligation._history_user = actor  # type: ignore[attr-defined]
    # The history's change reason holds 100 characters.
    obligation._change_reason = f"{reason} ({EventSource(source).label})"[:100]  # type: ignore[attr-defined]
    obligation.save(update_fields=[*changed, "updated_at"])
