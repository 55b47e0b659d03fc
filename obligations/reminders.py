"""The reminder sweep: who gets what today. tasks.py and `manage.py send_reminders` call it.

Two steps, each safe to run twice, late, or in two workers at once:

1. **Decide.** Cycles whose indexed `next_reminder_at` has come are read a batch at a time.
   For each, the reminders owed today (due soon, an escalation, evidence expiring) are written
   to the outbox as pending rows under the unique constraint (cycle, kind, step, deadline,
   recipient), in the same transaction that moves `next_reminder_at` on to the next date that
   matters. A row that already exists is skipped by the database, so nothing is owed twice.
   Recurring duties whose cycle was met roll forward here, and a met cycle whose evidence has
   all expired is no longer met. A cycle whose decision raises is logged (with its id and its
   organisation's), skipped, and looked at again the next day; its write, if any, ran in a
   savepoint, so the batch goes on and no organisation's reminders wait on another's row.
2. **Deliver.** Pending rows are claimed by a conditional update (this run's token), grouped
   into one digest per recipient, sent, and marked sent per digest. A digest that cannot be
   built or sent gives its rows back and the run goes on to the next recipient.

**The lease.** A claim lapses after settings.REMINDER_CLAIM_LEASE_SECONDS (2 minutes); then the
next delivery run takes the rows over. Beat starts one every 5 minutes, so a run killed
mid-delivery is finished within about 7 minutes. A live run keeps its rows however long it
takes: before each digest it renews the claim on all of them once a quarter of the lease has
passed (one UPDATE every 30 s, not one per digest), and it counts them: a renewal that finds
fewer rows than the run should hold means it stalled past its lease and another run took some
over, so it gives the rest back and stops.

**The duplicate window**, exactly: at most one digest per run is sent twice, and only
- when the mail server accepted it and the process died before marking its rows sent (the next
  run sends it again), or
- when building and sending that one digest took longer than three quarters of the lease
  (90 s; settings.EMAIL_TIMEOUT bounds each wait on the mail server to 10 s, and the workers'
  clocks must agree), so another run took its rows over meanwhile.
Every other failure sends nothing twice (tests/test_reminders.py and
tests/test_reminder_recovery.py show each; tests/test_workers.py kills a real worker).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import smtplib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from obligations import bulk
from obligations import models as m
from obligations.dates import add_months, display, london_today
from obligations.links import object_url

log = logging.getLogger(__name__)

# Cycles decided per transaction; the sweep's query count is constant up to this many. At
# 5,000, a sweep of 100,000 spent a second more on reads and commits (its memory: 40 MB).
SWEEP_BATCH = 20_000
EVIDENCE_WARNING_DAYS = 30
ESCALATION_EVERY_DAYS = 7
K = m.ReminderKind


def london_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


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


# --- A run's claim on its outbox rows -------------------------------------


def claim_lease() -> dt.timedelta:
    """How long a claim holds unless renewed (the module docstring: the lease)."""
    return dt.timedelta(seconds=settings.REMINDER_CLAIM_LEASE_SECONDS)


class Claim:
    """A run's claim on pending outbox rows: its token, when it last renewed them (each row it
    holds was claimed since), and how many it should hold (rows it took or recorded, less those
    it settled or gave back)."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex
        self.renewed_at = timezone.now()
        self.held = 0

    def rows(self) -> QuerySet[m.Reminder]:
        # Found through the partial index on pending claims.
        return m.Reminder.objects.filter(claim=self.token, status=m.ReminderStatus.PENDING)

    def take_over(self) -> None:
        """Claim pending rows nobody holds: new ones from the web, and those of a dead run."""
        now = timezone.now()
        self.held += (
            m.Reminder.objects.filter(status=m.ReminderStatus.PENDING)
            .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - claim_lease()))
            .exclude(claim=self.token)
            .update(claim=self.token, claimed_at=now)
        )

    def renew(self) -> bool:
        """Renew the claim on every row the run holds once a quarter of the lease has passed.
        False if some are no longer held: the run stalled past its lease and another took
        them over."""
        now = timezone.now()
        if now - self.renewed_at < claim_lease() / 4:
            return True
        renewed = self.rows().update(claimed_at=now)
        self.renewed_at = now
        return renewed >= self.held

    def give_back(self) -> None:
        """Leave every row the run still holds to the next run, at once."""
        self.held -= self.rows().update(claim="", claimed_at=None)


# --- Step 1: decide -------------------------------------------------------


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


class CycleRow(NamedTuple):
    """What the sweep reads of a cycle: plain values, no model instances (100,000 of them
    would cost more than the rest of the sweep)."""

    pk: int
    status: str
    due_date: dt.date | None
    obligation_id: int
    current_cycle_id: int | None
    applicable: bool
    owner_id: int | None
    organisation_id: int
    duty_id: int
    service_name: str | None
    provider_name: str


CYCLE_FIELDS = (
    "pk",
    "status",
    "due_date",
    "obligation_id",
    "obligation__current_cycle_id",
    "obligation__applicable",
    "obligation__owner_id",
    "obligation__provider__organisation_id",
    "obligation__duty_id",
    "obligation__service__name",
    "obligation__provider__name",
)


class DutyRow(NamedTuple):
    code: str
    title: str
    recurrence: dict[str, Any] | None


def load_duties() -> dict[int, DutyRow]:
    """The catalogue's duties, read once per run (there are dozens, not thousands)."""
    return {
        pk: DutyRow(code, title, (deadline or {}).get("recurrence"))
        for pk, code, title, deadline in m.Duty.objects.values_list(
            "pk", "code", "title", "deadline"
        )
    }


def subject(code: str, title: str, service: str | None, provider: str) -> str:
    where = service or f"{provider} (all its services)"
    return f"{code} {title} for {where}"


@dataclass
class _Context:
    """What one batch's decisions need, read in a fixed number of queries."""

    today: dt.date
    duties: dict[int, DutyRow]
    org_leads: dict[int, list[int]]
    duty_leads: dict[tuple[int, int], list[int]]
    staff: dict[int, dict[str, list[int]]]  # organisation -> role -> user ids (members)
    evidence: dict[int, list[tuple[int, str, dt.date | None]]]  # cycle -> (pk, title, expiry)
    _leads: dict[tuple[int, int], list[int]] = field(default_factory=dict)

    @classmethod
    def load(cls, rows: list[CycleRow], today: dt.date, duties: dict[int, DutyRow]) -> _Context:
        organisations = {r.organisation_id for r in rows}
        staff: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        memberships = (
            m.Membership.objects.active()
            .filter(organisation__in=organisations, user__is_active=True)
            .order_by("user_id")
            .values_list("organisation_id", "role", "user_id")
        )
        for organisation, role, user in memberships:
            staff[organisation][role].append(user)
        evidence: dict[int, list[tuple[int, str, dt.date | None]]] = defaultdict(list)
        current = m.Evidence.objects.filter(
            cycle__id__any=[r.pk for r in rows],
            purged_at__isnull=True,
            superseded_by__isnull=True,
        ).values_list("cycle_id", "pk", "title", "expires_on")
        for cycle_id, pk, title, expires in current:
            evidence[cycle_id].append((pk, title, expires))
        return cls(
            today=today,
            duties=duties,
            org_leads=dict(
                m.Organisation.objects.filter(pk__in=organisations).values_list(
                    "pk", "reminder_lead_days"
                )
            ),
            duty_leads={
                (org, duty): days
                for org, duty, days in m.LeadTime.objects.filter(
                    organisation__in=organisations
                ).values_list("organisation_id", "duty_id", "lead_days")
            },
            staff=staff,
            evidence=evidence,
        )

    def leads(self, row: CycleRow) -> list[int]:
        key = (row.organisation_id, row.duty_id)
        leads = self._leads.get(key)
        if leads is None:  # worked out once per organisation and duty, not per cycle
            days = self.duty_leads.get(key) or self.org_leads.get(row.organisation_id)
            leads = self._leads[key] = sorted(set(days or m.default_lead_days()))
        return leads

    def owners(self, row: CycleRow) -> list[int]:
        """The owner; unowned work goes to the organisation's admins, or with none to its
        compliance staff, so that no reminder is dropped for want of a recipient."""
        staff = self.staff[row.organisation_id]
        if row.owner_id is not None and any(row.owner_id in ids for ids in staff.values()):
            return [row.owner_id]  # still an active member (a leaver's work goes to the admins)
        return staff[m.Role.ADMIN] or staff[m.Role.COMPLIANCE]

    def escalate_to(self, row: CycleRow) -> list[int]:
        managers = self.staff[row.organisation_id][m.Role.MANAGER]
        return list(dict.fromkeys([*self.owners(row), *managers]))

    def subject(self, row: CycleRow) -> str:
        duty = self.duties[row.duty_id]
        return subject(duty.code, duty.title, row.service_name, row.provider_name)


def _owed_for_open(row: CycleRow, ctx: _Context) -> tuple[list[Owed], list[dt.date]]:
    """Reminders owed today for an open cycle, and the later dates on which more fall due."""
    today, due = ctx.today, row.due_date
    owed: list[Owed] = []
    later: list[dt.date] = []
    if due is None:
        return owed, later
    if due >= today:
        leads = ctx.leads(row)
        days = (due - today).days
        reached = [lead for lead in leads if days <= lead]
        if reached:
            # The most specific lead reached: a missed day never sends two at once.
            lead = min(reached)
            when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
            reason = f"{ctx.subject(row)} is due on {fmt(due)} ({when})."
            owed += [Owed(row.pk, K.DUE_SOON, lead, due, u, reason) for u in ctx.owners(row)]
        later += [due - dt.timedelta(days=lead) for lead in leads if days > lead]
        later.append(due + dt.timedelta(days=1))
    else:
        late = (today - due).days
        week = (late - 1) // ESCALATION_EVERY_DAYS
        reason = (
            f"{ctx.subject(row)} was due on {fmt(due)}: {late} day{'s' if late != 1 else ''} "
            f"overdue. Escalated to its owner and the organisation's managers (week "
            f"{week + 1}; repeated weekly until it is met or marked not applicable)."
        )
        owed += [Owed(row.pk, K.OVERDUE, week, due, u, reason) for u in ctx.escalate_to(row)]
        later.append(due + dt.timedelta(days=1 + ESCALATION_EVERY_DAYS * (week + 1)))
    return owed, later


def _owed_for_evidence(row: CycleRow, ctx: _Context) -> tuple[list[Owed], list[dt.date]]:
    """Evidence on the cycle is flagged 30 days before it expires."""
    owed: list[Owed] = []
    later: list[dt.date] = []
    for pk, title, expires in ctx.evidence.get(row.pk, []):
        if expires is None or expires < ctx.today:
            continue
        warn_from = expires - dt.timedelta(days=EVIDENCE_WARNING_DAYS)
        if ctx.today >= warn_from:
            reason = (
                f"Evidence “{title}” for {ctx.subject(row)} expires on {fmt(expires)}; once "
                f"the evidence of a met obligation has all expired, it is no longer met."
            )
            owed += [
                Owed(row.pk, K.EVIDENCE_EXPIRING, pk, expires, u, reason) for u in ctx.owners(row)
            ]
        else:
            later.append(warn_from)
        later.append(expires + dt.timedelta(days=1))
    return owed, later


def _lapsed_on(row: CycleRow, ctx: _Context) -> dt.date | None:
    """The day a met cycle's evidence ran out, if every current item has expired."""
    items = ctx.evidence.get(row.pk, [])
    if not items or any(e is None or e >= ctx.today for _, _, e in items):
        return None
    return max(e for _, _, e in items if e is not None)


def _next_due(due: dt.date | None, months: int, today: dt.date) -> dt.date:
    """The first anniversary of the due date after today (a late cycle does not open its
    successor already overdue)."""
    anchor = due or today
    step = 1
    while (nxt := add_months(anchor, months * step)) <= today:
        step += 1
    return nxt


def _decide_met(
    row: CycleRow, ctx: _Context, result: SweepResult, dry_run: bool
) -> tuple[list[Owed], list[dt.date]]:
    """A met cycle: a recurring duty rolls forward; evidence that has all expired un-meets
    it; otherwise its evidence is watched."""
    from obligations import services

    recurrence = ctx.duties[row.duty_id].recurrence
    lapsed = _lapsed_on(row, ctx)
    if not recurrence and lapsed is None:
        return _owed_for_evidence(row, ctx)
    if recurrence:
        due = _next_due(row.due_date, int(recurrence["months"]), ctx.today)
        note = f"Recurring review: every {recurrence['months']} months."
        if lapsed is not None:
            due = min(due, lapsed)
            note += f" Due early: the evidence it was met on expired on {fmt(lapsed)}."
        trigger = m.CycleTrigger.RECURRENCE
    else:
        assert lapsed is not None
        due, trigger = lapsed, m.CycleTrigger.EVIDENCE_EXPIRED
        note = f"No longer met: its evidence expired on {fmt(lapsed)}."
    if not dry_run:
        # Rare, and a write with its events: done the way the services always do it. In a
        # savepoint: a write that fails (a due date past the range the database holds) is
        # undone alone, and PostgreSQL goes on accepting the batch's other statements.
        with transaction.atomic():
            services.open_next_cycle(
                actor=services.get_system_user(),
                cycle=m.ObligationCycle.objects.select_related("obligation").get(pk=row.pk),
                due=due,
                trigger=trigger,
                note=note,
                source=m.EventSource.TASK,
            )
    if recurrence:
        result.rolled_forward += 1
    else:
        result.no_longer_met += 1
    return [], []


def _decide_one(
    row: CycleRow, ctx: _Context, result: SweepResult, dry_run: bool
) -> tuple[list[Owed], list[dt.date]]:
    """What one cycle is owed today, and the later dates on which more falls due."""
    if row.current_cycle_id != row.pk or not row.applicable:
        return [], []  # replaced or closed for good: nothing more to watch
    if row.status in m.OPEN_STATUSES:
        owed, later = _owed_for_open(row, ctx)
        more, more_later = _owed_for_evidence(row, ctx)
        return owed + more, later + more_later
    if row.status == m.CycleStatus.MET:
        return _decide_met(row, ctx, result, dry_run)
    return [], []


def _decide(
    rows: list[CycleRow], ctx: _Context, result: SweepResult, dry_run: bool
) -> tuple[list[Owed], list[tuple[int, dt.datetime | None]]]:
    """What each cycle is owed today, and (pk, next_reminder_at) for each."""
    owed: list[Owed] = []
    schedule: list[tuple[int, dt.datetime | None]] = []
    midnights: dict[dt.date, dt.datetime] = {}
    for row in rows:
        try:
            found, later = _decide_one(row, ctx, result, dry_run)
        except Exception:
            # One bad row never stops the sweep for everyone: it is skipped, looked at again
            # tomorrow (not re-read today), and the run reports it when it ends.
            log.exception(
                "reminder sweep: cycle %s of organisation %s skipped after an error",
                row.pk,
                row.organisation_id,
            )
            result.skipped += 1
            found, later = [], [ctx.today + dt.timedelta(days=1)]
        owed += found
        upcoming = [d for d in later if d > ctx.today]
        next_at = None
        if upcoming:
            day = min(upcoming)
            next_at = midnights.get(day) or midnights.setdefault(day, london_midnight(day))
        schedule.append((row.pk, next_at))
    return owed, schedule


def _candidates(horizon: dt.datetime, after: int) -> list[CycleRow]:
    # The batch is chosen from the cycles alone, then joined: with the joins under the LIMIT,
    # PostgreSQL joined every cycle still due, at every batch, then kept the first ones.
    batch = (
        m.ObligationCycle.objects.filter(next_reminder_at__lt=horizon, pk__gt=after)
        .order_by("pk")
        .values("pk")[:SWEEP_BATCH]
    )
    return [
        CycleRow(*values)
        for values in m.ObligationCycle.objects.filter(pk__any=batch)
        .order_by("pk")
        .values_list(*CYCLE_FIELDS)
    ]


OUTBOX_FIELDS = ("cycle", "kind", "step", "deadline", "recipient", "reason")


def _record(owed: list[Owed], token: str, now: dt.datetime) -> None:
    bulk.insert_ignoring_conflicts(
        m.Reminder,
        OUTBOX_FIELDS,
        owed,
        same={
            "status": m.ReminderStatus.PENDING,
            "created_at": now,
            "claim": token,
            "claimed_at": now,
        },
    )


def _already_recorded(owed: list[Owed]) -> set[tuple[int, str, int, dt.date, int]]:
    cycles = {o.cycle_id for o in owed}
    return set(
        m.Reminder.objects.filter(cycle__id__any=cycles).values_list(
            "cycle_id", "kind", "step", "deadline", "recipient_id"
        )
    )


def run_sweep(*, today: dt.date, dry_run: bool = False) -> SweepResult:
    """Decide and deliver today's reminders. Safe to run twice, late, or concurrently."""
    result = SweepResult(date=today, dry_run=dry_run)
    claim = Claim()
    horizon = london_midnight(today + dt.timedelta(days=1))
    duties = load_duties()
    owed_total, would_send = 0, []
    after = 0
    while True:
        with transaction.atomic():
            rows = _candidates(horizon, after)
            if not rows:
                break
            after = rows[-1].pk
            result.cycles_checked += len(rows)
            ctx = _Context.load(rows, today, duties)
            owed, schedule = _decide(rows, ctx, result, dry_run)
            owed_total += len(owed)
            if dry_run:
                known = _already_recorded(owed)
                would_send += [o for o in owed if o.key not in known]
            else:
                # Claimed now: after the claim's last renewal, as each row it holds must be.
                _record(owed, claim.token, timezone.now())
                bulk.update_by_pk(m.ObligationCycle, ["next_reminder_at"], schedule)
        # A long sweep keeps what it recorded, to send each recipient one digest.
        claim.renew()
        if len(rows) < SWEEP_BATCH:
            break
    if dry_run:
        _count_dry_run(would_send, owed_total, result)
        if result.errors():
            raise SweepIncomplete.of(result)
        return result
    # The rows this run recorded and still holds.
    claim.held = claim.rows().count()
    result.already_sent = owed_total - claim.held
    deliver(claim=claim, result=result)
    return result


def _count_dry_run(would_send: list[Owed], owed_total: int, result: SweepResult) -> None:
    emails = dict(
        User.objects.filter(pk__in={o.recipient_id for o in would_send}).values_list("pk", "email")
    )
    result.already_sent = owed_total - len(would_send)
    result.sent = sum(1 for o in would_send if emails.get(o.recipient_id))
    result.in_app_only = len(would_send) - result.sent
    result.recipients = len({o.recipient_id for o in would_send if emails.get(o.recipient_id)})
    result.digests = result.recipients
    result.escalations = sum(
        1 for o in would_send if o.kind == K.OVERDUE and emails.get(o.recipient_id)
    )


# --- Step 2: deliver ------------------------------------------------------


class PendingRow(NamedTuple):
    """A pending reminder as delivery reads it, with what decides if it still matters."""

    pk: int
    kind: str
    deadline: dt.date
    reason: str
    recipient_id: int
    obligation_id: int
    cycle_id: int
    status: str
    due_date: dt.date | None
    current_cycle_id: int | None
    applicable: bool
    organisation_id: int


PENDING_FIELDS = (
    "pk",
    "kind",
    "deadline",
    "reason",
    "recipient_id",
    "cycle__obligation_id",
    "cycle_id",
    "cycle__status",
    "cycle__due_date",
    "cycle__obligation__current_cycle_id",
    "cycle__obligation__applicable",
    "cycle__obligation__provider__organisation_id",
)


def _still_relevant(row: PendingRow) -> bool:
    """A reminder decided earlier is sent only if it is still true when it comes to be sent."""
    if row.current_cycle_id != row.cycle_id or not row.applicable:
        return False
    if row.kind == K.REVIEW_REQUESTED:
        return row.status == m.CycleStatus.READY_FOR_REVIEW
    if row.kind == K.EVIDENCE_EXPIRING:
        return row.status in (*m.OPEN_STATUSES, m.CycleStatus.MET)
    return row.status in m.OPEN_STATUSES and row.due_date == row.deadline


def _held(ids: list[int], token: str) -> QuerySet[m.Reminder]:
    """This run's pending rows among `ids` (one parameter however many), found by their ids."""
    return m.Reminder.objects.filter(
        pk__any=ids, claim__unsearched=token, status__unsearched=m.ReminderStatus.PENDING
    )


def _settle(ids: list[int], claim: Claim, status: str) -> int:
    if not ids:
        return 0
    settled = _held(ids, claim.token).update(status=status, sent_at=timezone.now())
    claim.held -= settled
    return settled


def _release(ids: list[int], claim: Claim) -> None:
    """Give rows back after a failed send, so a retry takes them at once."""
    claim.held -= _held(ids, claim.token).update(claim="", claimed_at=None)


SECTIONS = (
    (K.OVERDUE, "Overdue"),
    (K.DUE_SOON, "Due soon"),
    (K.EVIDENCE_EXPIRING, "Evidence expiring"),
    (K.REVIEW_REQUESTED, "Waiting for your review"),
)


def digest_message(recipient: User, rows: list[PendingRow]) -> EmailMultiAlternatives:
    """One e-mail, plain text and HTML, each item linking to its obligation in the admin.

    A section lists its most urgent items up to REMINDER_DIGEST_MAX_ITEMS and counts the rest,
    with a link to the full list: a digest is for reading, the admin for everything.
    """
    site = settings.SITE_URL.rstrip("/")
    limit = settings.REMINDER_DIGEST_MAX_ITEMS
    # Not reverse() per item: 13,000 of them took a twentieth of a 100,000-cycle sweep.
    change = "admin:obligations_obligation_change"
    sections = []
    for kind, label in SECTIONS:
        entries = [r for r in rows if r.kind == kind]
        if not entries:
            continue
        shown = [
            {"reason": r.reason, "url": site + object_url(change, r.obligation_id)}
            for r in entries[:limit]
        ]
        sections.append(
            {
                "label": label,
                "count": len(entries),
                "items": shown,
                "more": len(entries) - len(shown),
            }
        )
    counts = ", ".join(
        f"{section['count']} {str(section['label']).lower()}" for section in sections
    )
    context = {
        "recipient": recipient,
        "sections": sections,
        "site": site,
        "notifications": site + reverse("admin:obligations_reminder_changelist"),
    }
    message = EmailMultiAlternatives(
        subject=f"OSA tracker: {counts}",
        body=render_to_string("obligations/email/digest.txt", context),
        to=[recipient.email],
    )
    message.attach_alternative(
        render_to_string("obligations/email/digest.html", context), "text/html"
    )
    return message


def _pending(claim: Claim) -> Iterator[PendingRow]:
    rows = (
        claim.rows()
        .order_by("recipient_id", "kind", "deadline", "pk")
        .values_list(*PENDING_FIELDS)
        .iterator(chunk_size=5000)
    )
    return (PendingRow(*values) for values in rows)


# What a mail server or a network can do to a send; anything else is a bug and propagates.
TRANSPORT_ERRORS = (smtplib.SMTPException, OSError)


class DeliveryFailed(Exception):
    """Some digests could not be handed to the mail server; their rows stay pending."""


def deliver(*, claim: Claim | None = None, result: SweepResult | None = None) -> SweepResult:
    """Send every pending reminder this run holds or can take over, one digest per recipient.

    Raises DeliveryFailed if the mail server refused or could not be reached (worth a retry),
    else SweepIncomplete if anything was skipped after an unexpected error (logged)."""
    claim = claim or Claim()
    result = result or SweepResult(date=london_today())
    claim.take_over()
    failures: list[Exception] = []
    held = claim.rows().values("recipient_id")
    recipients = {u.pk: u for u in User.objects.filter(pk__in=held)}
    # Only a member of the organisation is told of its work: a leaver's rows are cancelled.
    members = set(
        m.Membership.objects.active()
        .filter(user__in=held)
        .values_list("user_id", "organisation_id")
    )
    mailer = _Mailer()
    try:
        for recipient_id, group in groupby(_pending(claim), key=lambda r: r.recipient_id):
            if not claim.renew():
                log.warning(
                    "reminder delivery stalled past its lease and another run took over some of "
                    "its rows: it leaves the rest to the next run and stops"
                )
                claim.give_back()
                break
            rows = list(group)
            current = [r for r in rows if (r.recipient_id, r.organisation_id) in members]
            result.cancelled += _settle(
                [r.pk for r in rows if r not in current], claim, m.ReminderStatus.CANCELLED
            )
            _deliver_one(mailer, recipients[recipient_id], current, claim, result, failures)
    finally:
        mailer.close()
    if failures:
        first = failures[0]
        raise DeliveryFailed(f"{len(failures)} digest(s) not sent: {first!r}") from first
    if result.errors():
        raise SweepIncomplete.of(result)
    return result


class _Mailer:
    """One mail connection for the whole run, opened by the first digest (an idle run opens
    nothing) and opened again after a failure."""

    def __init__(self) -> None:
        self.connection = get_connection()
        self.opened = False

    def send(self, message: EmailMultiAlternatives) -> int:
        if not self.opened:
            self.connection.open()
            self.opened = True
        return int(self.connection.send_messages([message]) or 0)

    def close(self) -> None:
        if self.opened:
            self.opened = False
            try:
                self.connection.close()
            except TRANSPORT_ERRORS:
                log.warning("closing the mail connection failed", exc_info=True)


def _deliver_one(
    mailer: _Mailer,
    recipient: User,
    rows: list[PendingRow],
    claim: Claim,
    result: SweepResult,
    failures: list[Exception],
) -> None:
    relevant: list[PendingRow] = []
    stale: list[int] = []
    for r in rows:
        if _still_relevant(r):
            relevant.append(r)
        else:
            stale.append(r.pk)
    result.cancelled += _settle(stale, claim, m.ReminderStatus.CANCELLED)
    if not relevant:
        return
    ids = [r.pk for r in relevant]
    if not recipient.email or not recipient.is_active:
        result.in_app_only += _settle(ids, claim, m.ReminderStatus.IN_APP)
        return
    try:
        accepted = mailer.send(digest_message(recipient, relevant))
    except TRANSPORT_ERRORS as exc:  # the mail server refused or could not be reached
        log.warning("digest to %s not sent: %r", recipient.email, exc)
        mailer.close()  # the next digest opens a fresh connection
        _release(ids, claim)
        failures.append(exc)
        return
    except Exception:
        # A digest that cannot be built or sent (a bug, an address the mail library refuses)
        # costs its recipient alone: the next recipients still get theirs.
        log.exception(
            "reminder delivery: digest to user %s (cycles %s) not sent after an error",
            recipient.pk,
            sorted({r.cycle_id for r in relevant}),
        )
        mailer.close()
        _release(ids, claim)
        result.not_sent += 1
        return
    if not accepted:
        _release(ids, claim)
        failures.append(
            RuntimeError(f"the mail backend did not accept the digest to {recipient.email}")
        )
        return
    # The documented window: accepted by the mail server, not yet marked sent.
    marked = mark_sent(ids, claim)
    result.sent += marked
    result.escalations += sum(1 for r in relevant if r.kind == K.OVERDUE)
    result.digests += 1
    if recipient.pk not in result._recipients:
        result._recipients.add(recipient.pk)
        result.recipients += 1


def mark_sent(ids: list[int], claim: Claim) -> int:
    return _settle(ids, claim, m.ReminderStatus.SENT)


def notify_review(
    *, cycle: m.ObligationCycle, submitted_by: User, event: m.Event, recipients: Iterable[int]
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
            Owed(cycle.pk, K.REVIEW_REQUESTED, event.pk, deadline, user, reason)
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
    m.Reminder.objects.bulk_create(
        [
            m.Reminder(
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
