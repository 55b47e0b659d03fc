"""The register's states and kinds (pure): cycle statuses and which are open, overdue and due
soon as query filters, triggers, event kinds and sources."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Q


class CycleStatus(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    READY_FOR_REVIEW = "ready_for_review", "Ready for review"
    SENT_BACK = "sent_back", "Sent back"
    MET = "met", "Met"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


CLOSED_STATUSES = (CycleStatus.MET, CycleStatus.NOT_APPLICABLE)


OPEN_STATUSES = tuple(s for s in CycleStatus.values if s not in CLOSED_STATUSES)


# Open work someone has started (the dashboard's "in progress"): open, less not started.
UNDERWAY_STATUSES = tuple(s for s in OPEN_STATUSES if s != CycleStatus.NOT_STARTED)


def is_overdue(status: str, due: dt.date | None, today: dt.date) -> bool:
    """Open work past its due date; a continuous duty (no due date) never is."""
    return due is not None and due < today and status in OPEN_STATUSES


def overdue(today: dt.date, *, status: str = "status", due: str = "due_date") -> Q:
    """`is_overdue` as a filter, on the `status` and `due` columns (SQL's NULL < today is
    not true, so a continuous duty is left out here too)."""
    return Q(**{f"{due}__lt": today, f"{status}__in": OPEN_STATUSES})


def due_within(today: dt.date, days: int) -> Q:
    """Open work due between `today` and `days` from it, both included: not overdue yet."""
    return Q(due_date__range=(today, today + dt.timedelta(days=days)), status__in=OPEN_STATUSES)


# An obligation in one of these is not counted: no cycle yet, or marked not applicable.
UNCOUNTED_STATUSES = ("", CycleStatus.NOT_APPLICABLE)


def counted(status: str = "status") -> Q:
    """The `status` is not one of UNCOUNTED_STATUSES, written as one inequality each: SQLite
    matches a query to a partial index's condition with bound parameters in equalities, but
    not in an IN list."""
    condition = Q()
    for uncounted in UNCOUNTED_STATUSES:
        condition &= ~Q(**{status: uncounted})
    return condition


class CycleTrigger(models.TextChoices):
    INITIAL = "initial", "First cycle"
    RECURRENCE = "recurrence", "Recurring review"
    SIGNIFICANT_CHANGE = "significant_change", "Before a significant change"
    REAPPLIED = "reapplied", "Applies again after a profile change"
    REGULATORY_CHANGE = "regulatory_change", "Regulatory change"
    NOTICE = "notice", "Set by an Ofcom notice"
    CHARGING_YEAR = "charging_year", "For a fees charging year"
    EVIDENCE_EXPIRED = "evidence_expired", "The evidence it was met on expired"


class EventSource(models.TextChoices):
    ADMIN = "admin", "Admin"
    BULK = "bulk", "Bulk action"
    API = "api", "API"
    TASK = "task", "Task"
    IMPORT = "import", "Import"
    COMMAND = "command", "Command"


class EventKind(models.TextChoices):
    CREATED = "created", "Obligation created"
    STATUS = "status", "Status changed"
    NOT_APPLICABLE = "not_applicable", "No longer applies"
    REAPPLIED = "reapplied", "Applies again"
    CYCLE_OPENED = "cycle_opened", "Cycle opened"
    DUE_CHANGED = "due_changed", "Due date changed"
    OWNER_CHANGED = "owner_changed", "Owner changed"
    EVIDENCE_ADDED = "evidence_added", "Evidence added"
    EVIDENCE_PURGED = "evidence_purged", "Evidence purged"
    ASSESSMENT = "assessment", "Risk assessment"
    START_CHANGED = "start_changed", "Start day changed"


class TransitionError(ValueError):
    """A transition the workflow does not allow, with the reason in words."""
