"""The status workflow: one table of transitions, each a conditional update plus an event in
one transaction, with four-eyes review and the gates on met."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from obligations.access.selectors import REVIEWER_ROLES, active_memberships_of
from obligations.assessments.gates import check_assessment, check_measures
from obligations.assessments.models import RiskAssessment
from obligations.dates import london_today
from obligations.register.cycles import open_cycle, update_cycle
from obligations.register.events import record_event
from obligations.register.models import Event, Evidence, Obligation, ObligationCycle
from obligations.register.selectors import current_evidence_of
from obligations.register.states import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    CycleStatus,
    EventKind,
    TransitionError,
)
from obligations.reminders.outbox import enqueue_delivery, notify_review

# The one table of allowed transitions: target -> (the states it can come from, reason needed).
TRANSITIONS: dict[str, tuple[tuple[str, ...], bool]] = {
    CycleStatus.IN_PROGRESS: ((CycleStatus.NOT_STARTED, CycleStatus.SENT_BACK), False),
    CycleStatus.READY_FOR_REVIEW: ((CycleStatus.IN_PROGRESS,), False),
    CycleStatus.MET: ((CycleStatus.READY_FOR_REVIEW,), False),
    CycleStatus.SENT_BACK: ((CycleStatus.READY_FOR_REVIEW,), True),
    CycleStatus.NOT_APPLICABLE: (OPEN_STATUSES, True),
}


def current_evidence(cycle: ObligationCycle) -> QuerySet[Evidence]:
    """Evidence that counts: not purged, not superseded by a newer version, not expired."""
    return current_evidence_of(cycle, london_today())


def check_can_be_met(actor: User, cycle: ObligationCycle) -> None:
    """TransitionError saying why `actor` may not approve the cycle as it stands (four eyes,
    evidence, the assessment, the measures); the import asks it of the approver it names."""
    _check_four_eyes(actor, cycle)
    check_assessment(actor, cycle)
    check_measures(cycle)


def _check_four_eyes(actor: User, cycle: ObligationCycle) -> None:
    obligation = cycle.obligation
    evidence = current_evidence(cycle)
    if not evidence.exists():
        raise TransitionError("It cannot be met without at least one current evidence item.")
    if obligation.owner_id == actor.pk:
        raise TransitionError("Four eyes: the obligation's owner cannot approve it.")
    if cycle.submitted_by_id == actor.pk:
        raise TransitionError(
            "Four eyes: the person who submitted it for review cannot approve it."
        )
    if evidence.filter(uploaded_by=actor).exists():
        raise TransitionError("Four eyes: the uploader of its current evidence cannot approve it.")


def _transition(
    *, actor: User, cycle: ObligationCycle, to: str, reason: str, source: str
) -> ObligationCycle:
    if to not in TRANSITIONS:
        raise TransitionError(f"{to!r} is not a status an obligation can be moved to.")
    sources, needs_reason = TRANSITIONS[to]
    reason = (reason or "").strip()
    with transaction.atomic():
        cycle = ObligationCycle.objects.select_related("obligation").get(pk=cycle.pk)
        current = cycle.status
        label = CycleStatus(to).label
        if current not in sources:
            raise TransitionError(
                f"An obligation that is {CycleStatus(current).label.lower()} cannot be moved "
                f"to {label.lower()}."
            )
        if cycle.obligation.current_cycle_id != cycle.pk:
            raise TransitionError("Only the current cycle can change status.")
        if needs_reason and not reason:
            raise TransitionError(f"Moving to {label.lower()} needs a reason.")
        if to == CycleStatus.MET:
            check_can_be_met(actor, cycle)
        now = timezone.now()
        changes: dict[str, Any] = {"status": to, "updated_at": now, "next_reminder_at": now}
        if to == CycleStatus.READY_FOR_REVIEW:
            changes["submitted_by"] = actor
        if to == CycleStatus.MET:
            changes["reviewer"] = actor
        if to in CLOSED_STATUSES:
            changes["closed_at"] = now
        if needs_reason:
            changes["status_reason"] = reason
        # Conditional on the status we read: of two people clicking at once, one wins.
        if not update_cycle(cycle, only_if=current, **changes):
            raise TransitionError("Someone else changed this obligation first; reload it.")
        event = record_event(
            actor=actor,
            obligation=cycle.obligation,
            cycle=cycle,
            kind=EventKind.STATUS,
            from_status=current,
            to_status=to,
            reason=reason,
            source=source,
        )
        if to == CycleStatus.READY_FOR_REVIEW:
            _ask_for_review(actor=actor, cycle=cycle, event=event)
        if to == CycleStatus.MET:
            RiskAssessment.objects.filter(cycle=cycle).update(approver=actor, approved_at=now)
    cycle.refresh_from_db()
    return cycle


def reviewers_for(obligation: Obligation, submitted_by: User) -> list[int]:
    """The colleagues who could approve: active members who may review, not the owner and
    not the submitter (four eyes)."""
    return list(
        active_memberships_of(obligation.provider.organisation_id)
        .filter(role__in=REVIEWER_ROLES, user__is_active=True)
        .exclude(user_id__in=[submitted_by.pk, obligation.owner_id or submitted_by.pk])
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


def _ask_for_review(*, actor: User, cycle: ObligationCycle, event: Event) -> None:
    """Outbox rows in this transaction; the worker is asked to deliver once it commits. With
    the broker down the save still succeeds and the nightly sweep delivers them."""
    notify_review(
        cycle=cycle,
        submitted_by=actor,
        event=event,
        recipients=reviewers_for(cycle.obligation, actor),
    )
    transaction.on_commit(enqueue_delivery, robust=True)


@transaction.atomic
def open_next_cycle(
    *,
    actor: User,
    cycle: ObligationCycle,
    due: dt.date,
    trigger: str,
    note: str,
    source: str,
) -> ObligationCycle | None:
    """Open the cycle after a met one (a recurring review, or evidence that expired). A met
    cycle is never reopened; if it is no longer the current one, nothing happens."""
    obligation = (
        Obligation.objects.select_for_update(of=("self",))
        .select_related("current_cycle")
        .get(pk=cycle.obligation_id)
    )
    if obligation.current_cycle_id != cycle.pk or not obligation.applicable:
        return None
    return open_cycle(
        actor=actor, obligation=obligation, due=due, trigger=trigger, source=source, note=note
    )


def do_start(
    *, actor: User, cycle: ObligationCycle, source: str, reason: str = ""
) -> ObligationCycle:
    return _transition(
        actor=actor, cycle=cycle, to=CycleStatus.IN_PROGRESS, reason=reason, source=source
    )


def do_submit_for_review(
    *, actor: User, cycle: ObligationCycle, source: str, reason: str = ""
) -> ObligationCycle:
    return _transition(
        actor=actor, cycle=cycle, to=CycleStatus.READY_FOR_REVIEW, reason=reason, source=source
    )


def do_approve(
    *, actor: User, cycle: ObligationCycle, source: str, reason: str = ""
) -> ObligationCycle:
    return _transition(actor=actor, cycle=cycle, to=CycleStatus.MET, reason=reason, source=source)


def do_send_back(
    *, actor: User, cycle: ObligationCycle, source: str, reason: str
) -> ObligationCycle:
    return _transition(
        actor=actor, cycle=cycle, to=CycleStatus.SENT_BACK, reason=reason, source=source
    )


def do_mark_not_applicable(
    *, actor: User, cycle: ObligationCycle, source: str, reason: str
) -> ObligationCycle:
    return _transition(
        actor=actor, cycle=cycle, to=CycleStatus.NOT_APPLICABLE, reason=reason, source=source
    )


# For callers that name the target (API, import, bulk actions): the same functions.
DO_BY_TARGET = {
    CycleStatus.IN_PROGRESS: do_start,
    CycleStatus.READY_FOR_REVIEW: do_submit_for_review,
    CycleStatus.MET: do_approve,
    CycleStatus.SENT_BACK: do_send_back,
    CycleStatus.NOT_APPLICABLE: do_mark_not_applicable,
}


def transition_to(
    *, actor: User, cycle: ObligationCycle, to: str, source: str, reason: str = ""
) -> ObligationCycle:
    action = DO_BY_TARGET.get(to)  # type: ignore[call-overload]
    if action is None:
        raise TransitionError(f"{to!r} is not a status an obligation can be moved to.")
    result: ObligationCycle = action(actor=actor, cycle=cycle, source=source, reason=reason)
    return result
