"""The outbox: reminders owed are recorded here and delivery is enqueued by task name, so
the register never imports Celery tasks."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from obligations.bulk import insert_ignoring_conflicts
from obligations.dates import display, london_today
from obligations.register.models import Event, ObligationCycle
from obligations.reminders.models import (
    Reminder,
    ReminderKind,
    ReminderStatus,
    WebhookDelivery,
    WebhookEndpoint,
)

# dates.display, remembered: a sweep formats the same few dates 100,000 times.
fmt = functools.lru_cache(maxsize=1024)(display)


@dataclass
class SweepResult:
    date: dt.date
    dry_run: bool = False
    sent: int = 0
    already_sent: int = 0
    recipients: int = 0
    escalations: int = 0
    digests: int = 0
    in_app_only: int = 0
    cancelled: int = 0
    rolled_forward: int = 0
    no_longer_met: int = 0
    cycles_checked: int = 0
    skipped: int = 0  # cycles whose decision raised (logged)
    not_sent: int = 0  # digests that raised while built or sent (logged), their rows given back
    webhooks_sent: int = 0
    webhooks_failed: int = 0  # given up (each shown, with why, in the admin)
    _recipients: set[int] = field(default_factory=set, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "sent": self.sent,
            "already_sent": self.already_sent,
            "recipients": self.recipients,
            "escalations": self.escalations,
            "digests": self.digests,
        }

    def summary(self) -> str:
        verb = "would send" if self.dry_run else "sent"
        dry = " (dry run: nothing written)" if self.dry_run else ""
        lines = [
            f"Reminder sweep for {fmt(self.date)}{dry}:",
            f"  {self.cycles_checked} cycle(s) checked",
            f"  {verb} {self.sent} reminder(s) in {self.digests} digest(s) to "
            f"{self.recipients} recipient(s), {self.escalations} of them escalations",
            f"  {self.already_sent} already sent by an earlier run",
        ]
        if self.in_app_only:
            lines.append(f"  {self.in_app_only} in the admin only (recipient has no e-mail)")
        if self.cancelled:
            lines.append(f"  {self.cancelled} no longer relevant, not sent")
        if self.webhooks_sent:
            lines.append(f"  {self.webhooks_sent} posted to team chat webhooks")
        if self.webhooks_failed:
            lines.append(f"  {self.webhooks_failed} webhook post(s) given up: see the admin")
        if self.rolled_forward:
            lines.append(f"  {self.rolled_forward} recurring obligation(s) rolled forward")
        if self.no_longer_met:
            lines.append(f"  {self.no_longer_met} no longer met: their evidence expired")
        lines += [f"  {error}" for error in self.errors()]
        return "\n".join(lines)

    def errors(self) -> list[str]:
        errors = []
        if self.skipped:
            errors.append(f"{self.skipped} cycle(s) skipped after an error: see the log")
        if self.not_sent:
            errors.append(f"{self.not_sent} digest(s) not sent after an error: see the log")
        return errors


class SweepIncomplete(Exception):
    """The run did everything else, but skipped cycles or digests after an unexpected error
    (each logged with its ids). Not retried: the skipped cycles are looked at again the next
    day, and the digests' rows are pending for the next delivery run."""

    result: SweepResult  # what the run did (its message alone travels: Celery rebuilds it)

    @classmethod
    def of(cls, result: SweepResult) -> SweepIncomplete:
        incomplete = cls("; ".join(result.errors()))
        incomplete.result = result
        return incomplete


def claim_lease() -> dt.timedelta:
    """How long a claim holds unless renewed (the module docstring: the lease)."""
    return dt.timedelta(seconds=settings.REMINDER_CLAIM_LEASE_SECONDS)


OutboxRow = Reminder | WebhookDelivery


class Claim:
    """A run's claim on pending outbox rows of one channel (e-mailed reminders, or webhook
    deliveries): its token, when every row it holds was last stamped (each was claimed or
    renewed since), and how many it should hold (rows it took or recorded, less those it
    settled or gave back).

    Renewing costs a write of each row renewed (at a million obligations, 900,000 rows of five
    indexes: tens of seconds, every 30 s when all were renewed once a quarter of the lease had
    passed), so rows are stamped again only when they need it: those about to be sent, just
    before, once a quarter of the lease has passed since all were (`renew_among`: the duplicate
    window); and every row held, once three quarters of it have (`renew`: a long
    run keeps its rows)."""

    def __init__(self, model: type[OutboxRow] = Reminder) -> None:
        self.model = model
        self.token = uuid.uuid4().hex
        self.renewed_at = timezone.now()
        self.held = 0

    def rows(self) -> QuerySet[Any]:
        # Found through the partial index on pending claims.
        return self.model.objects.filter(claim=self.token, status=ReminderStatus.PENDING)

    def held_among(self, ids: Sequence[int]) -> QuerySet[Any]:
        """This run's pending rows among `ids` (one parameter however many)."""
        return self.model.objects.filter(
            pk__any=ids, claim__unsearched=self.token, status__unsearched=ReminderStatus.PENDING
        )

    def take_over(self) -> None:
        """Claim pending rows nobody holds: new ones from the web, and those of a dead run
        (a webhook delivery waiting out its backoff is left alone until then)."""
        now = timezone.now()
        free = self.model.objects.filter(status=ReminderStatus.PENDING).filter(
            Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - claim_lease())
        )
        if self.model is WebhookDelivery:
            free = free.filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        self.held += free.exclude(claim=self.token).update(claim=self.token, claimed_at=now)

    def renew(self) -> bool:
        """Renew the claim on every row the run holds once three quarters of the lease have
        passed, so that a long run keeps them and each recipient's rows go out in one digest,
        not split with another run (unless a single digest took longer than the last quarter).
        False if some are no longer held: the run stalled past its lease and another took them
        over."""
        now = timezone.now()
        if now - self.renewed_at < claim_lease() * 3 / 4:
            return True
        renewed = self.rows().update(claimed_at=now)
        self.renewed_at = now
        return renewed >= self.held

    def renew_among(self, ids: Sequence[int]) -> bool:
        """Just before sending rows `ids`: stamp them again if a quarter of the lease has
        passed since every row held was, so that each is held for three quarters of the lease
        from here (the documented duplicate window). (A digest's rows were recorded across the
        whole sweep, so the oldest of them is about as old as the claim: not worth reading each
        row's stamp.) False if some are no longer held: the run stalled past its lease."""
        if timezone.now() - self.renewed_at < claim_lease() / 4:
            return True
        return self.held_among(ids).update(claimed_at=timezone.now()) >= len(ids)

    def give_back(self) -> None:
        """Leave every row the run still holds to the next run, at once."""
        self.held -= self.rows().update(claim="", claimed_at=None)


class Owed(NamedTuple):
    """A reminder owed: the fields of its outbox row, in OUTBOX_FIELDS order (a tuple is built
    faster than a frozen dataclass, and a sweep builds 80,000)."""

    cycle_id: int
    kind: str
    step: int
    deadline: dt.date
    recipient_id: int
    reason: str

    @property
    def key(self) -> tuple[int, str, int, dt.date, int]:
        return (self.cycle_id, self.kind, self.step, self.deadline, self.recipient_id)


def subject(code: str, title: str, service: str | None, provider: str) -> str:
    where = service or f"{provider} (all its services)"
    return f"{code} {title} for {where}"


OUTBOX_FIELDS = ("cycle", "kind", "step", "deadline", "recipient", "reason")


def record_owed(owed: list[Owed], token: str, now: dt.datetime) -> None:
    insert_ignoring_conflicts(
        Reminder,
        OUTBOX_FIELDS,
        owed,
        same={
            "status": ReminderStatus.PENDING,
            "created_at": now,
            "claim": token,
            "claimed_at": now,
        },
    )


def already_recorded(owed: list[Owed]) -> set[tuple[int, str, int, dt.date, int]]:
    cycles = {o.cycle_id for o in owed}
    return set(
        Reminder.objects.filter(cycle__id__any=cycles).values_list(
            "cycle_id", "kind", "step", "deadline", "recipient_id"
        )
    )


def notify_review(
    *, cycle: ObligationCycle, submitted_by: User, event: Event, recipients: Iterable[int]
) -> None:
    """Outbox rows for the colleagues who can review a submission, in the caller's
    transaction; a worker delivers them (or beat's periodic delivery, if the broker was down)."""
    obligation = cycle.obligation
    service = obligation.service.name if obligation.service else None
    reason = (
        f"{submitted_by.get_full_name() or submitted_by.get_username()} submitted "
        f"{subject(obligation.duty.code, obligation.duty.title, service, str(obligation.provider))}"
        " for review."
    )
    now = timezone.now()
    deadline = cycle.due_date or london_today()
    _record_unclaimed(
        [
            Owed(cycle.pk, ReminderKind.REVIEW_REQUESTED, event.pk, deadline, user, reason)
            for user in recipients
        ],
        now,
    )


def enqueue_delivery() -> None:
    """Ask a worker to deliver the outbox, by the task's name (the register never imports the
    tasks). Called after commit with robust=True: if the broker is down this raises, Django
    logs it, and the save has already succeeded; beat's periodic delivery sends the rows once
    the broker is back."""
    current_app.send_task("obligations.deliver_reminders", retry=False)


def _record_unclaimed(owed: list[Owed], now: dt.datetime) -> None:
    Reminder.objects.bulk_create(
        [
            Reminder(
                cycle_id=o.cycle_id,
                kind=o.kind,
                step=o.step,
                deadline=o.deadline,
                recipient_id=o.recipient_id,
                reason=o.reason,
                created_at=now,
            )
            for o in owed
        ],
        ignore_conflicts=True,
    )


# Celery's retries of a delivery task (obligations/tasks.py) and a webhook delivery's own wait
# before its next attempt grow alike: this many seconds, doubled each time, up to
# settings.TASK_RETRY_MAX_DELAY.
RETRY_BACKOFF_SECONDS = 30


def retry_delay(attempts: int) -> dt.timedelta:
    """How long to wait after the `attempts`-th failure before the next attempt."""
    exponent = min(max(attempts - 1, 0), 16)
    seconds = min(RETRY_BACKOFF_SECONDS * 2**exponent, settings.TASK_RETRY_MAX_DELAY)
    return dt.timedelta(seconds=seconds)


def webhook_event(kind: str, from_notice: bool) -> str | None:
    """Which of an endpoint's switches (a WebhookEndpoint field) a reminder falls under. A
    review request is for the reviewers alone, never a team channel."""
    if kind == ReminderKind.OVERDUE:
        return "escalations"
    if kind == ReminderKind.REVIEW_REQUESTED:
        return None
    return "notice_deadlines" if from_notice else "digests"


# The endpoint's switches, WebhookEndpoint's fields of the same names.
EVENTS = ("digests", "escalations", "notice_deadlines")
WEBHOOK_FIELDS = ("endpoint", "cycle", "kind", "step", "deadline", "reason")


def record_webhooks(
    owed: list[Owed], organisation_of: dict[int, int], token: str, now: dt.datetime
) -> None:
    """Webhook rows for the reminders owed, one per reminder (not per recipient) and
    subscribed endpoint, in the sweep's transaction and under its claim, as record_owed."""
    if not owed:
        return
    subscribed = WebhookEndpoint.objects.filter(
        organisation__in={organisation_of[o.cycle_id] for o in owed}, active=True
    ).values_list("pk", "organisation_id", *EVENTS)
    endpoints: dict[int, list[tuple[int, set[str]]]] = {}
    for pk, organisation, *switches in subscribed:
        events = {event for event, on in zip(EVENTS, switches, strict=True) if on}
        endpoints.setdefault(organisation, []).append((pk, events))
    if not endpoints:
        return
    cycles = {o.cycle_id for o in owed if organisation_of[o.cycle_id] in endpoints}
    from_notices = set(
        ObligationCycle.objects.filter(pk__any=cycles)
        .filter(
            Q(obligation__ofcom_notice__isnull=False)
            | Q(obligation__technology_notice__isnull=False)
        )
        .values_list("pk", flat=True)
    )
    rows: dict[tuple[int, int, str, int, dt.date], str] = {}
    for o in owed:
        event = webhook_event(o.kind, o.cycle_id in from_notices)
        for endpoint, events in endpoints.get(organisation_of[o.cycle_id], ()):
            if event in events:
                rows.setdefault((endpoint, o.cycle_id, o.kind, o.step, o.deadline), o.reason)
    insert_ignoring_conflicts(
        WebhookDelivery,
        WEBHOOK_FIELDS,
        [(*key, reason) for key, reason in rows.items()],
        same={
            "status": ReminderStatus.PENDING,
            "attempts": 0,
            "last_error": "",
            "created_at": now,
            "claim": token,
            "claimed_at": now,
        },
    )
