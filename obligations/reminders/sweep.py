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
2. **Deliver.** Pending rows are claimed by a conditional update (this run's token), read in
   recipient order and streamed into one digest per recipient (its ids and its most urgent
   items kept, whatever its length), sent, and marked sent per digest. A digest that cannot be
   built or sent gives its rows back and the run goes on to the next recipient. Team chat
   webhooks are a second channel of the same outbox (webhooks.py): their rows are recorded in
   the same transaction, claimed and settled by the same Claim, one post per reminder.

**The lease.** A claim lapses after settings.REMINDER_CLAIM_LEASE_SECONDS (2 minutes); then the
next delivery run takes the rows over. Beat starts one every 5 minutes, so a run killed
mid-delivery is finished within about 7 minutes. Renewing is a write of every row renewed, so a
live run stamps rows again only when they need it (outbox.Claim): just before a digest is sent,
its own rows, if a quarter of the lease has passed since all its rows were stamped; and every
row it holds once three quarters of the lease have passed since then (not every 30 s: at a
million obligations that rewrote 900,000 rows each time). So it keeps its rows however long it
takes, unless one digest takes longer than the last quarter of the lease (then another run may
send some recipients' digests in its place, never twice); and it counts them: a renewal that
finds fewer rows than the run should hold means it stalled past its lease and another run took
some over, so it gives the rest back and stops.

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
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from obligations.access.models import Membership, Organisation, Role, default_lead_days
from obligations.access.users import get_system_user
from obligations.bulk import update_by_pk
from obligations.catalogue.models import Duty
from obligations.dates import add_months
from obligations.register.models import Evidence, ObligationCycle
from obligations.register.states import OPEN_STATUSES, CycleStatus, CycleTrigger, EventSource
from obligations.register.workflow import open_next_cycle
from obligations.reminders.delivery import deliver
from obligations.reminders.models import LeadTime, ReminderKind, WebhookDelivery
from obligations.reminders.outbox import (
    Claim,
    Owed,
    SweepIncomplete,
    SweepResult,
    already_recorded,
    fmt,
    record_owed,
    record_webhooks,
    subject,
)
from obligations.reminders.webhooks import deliver_webhooks

log = logging.getLogger(__name__)


# Cycles decided per transaction; the sweep's query count is constant up to this many. At
# 5,000, a sweep of 100,000 spent a second more on reads and commits (its memory: 40 MB).
SWEEP_BATCH = 20_000


EVIDENCE_WARNING_DAYS = 30


ESCALATION_EVERY_DAYS = 7


def london_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


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
        for pk, code, title, deadline in Duty.objects.values_list("pk", "code", "title", "deadline")
    }


@dataclass
class SweepContext:
    """What one batch's decisions need, read in a fixed number of queries."""

    today: dt.date
    duties: dict[int, DutyRow]
    org_leads: dict[int, list[int]]
    duty_leads: dict[tuple[int, int], list[int]]
    staff: dict[int, dict[str, list[int]]]  # organisation -> role -> user ids (members)
    evidence: dict[int, list[tuple[int, str, dt.date | None]]]  # cycle -> (pk, title, expiry)
    _leads: dict[tuple[int, int], list[int]] = field(default_factory=dict)

    @classmethod
    def load(cls, rows: list[CycleRow], today: dt.date, duties: dict[int, DutyRow]) -> SweepContext:
        organisations = {r.organisation_id for r in rows}
        staff: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        memberships = (
            Membership.objects.active()
            .filter(organisation__in=organisations, user__is_active=True)
            .order_by("user_id")
            .values_list("organisation_id", "role", "user_id")
        )
        for organisation, role, user in memberships:
            staff[organisation][role].append(user)
        evidence: dict[int, list[tuple[int, str, dt.date | None]]] = defaultdict(list)
        current = Evidence.objects.filter(
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
                Organisation.objects.filter(pk__in=organisations).values_list(
                    "pk", "reminder_lead_days"
                )
            ),
            duty_leads={
                (org, duty): days
                for org, duty, days in LeadTime.objects.filter(
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
            leads = self._leads[key] = sorted(set(days or default_lead_days()))
        return leads

    def owners(self, row: CycleRow) -> list[int]:
        """The owner; unowned work goes to the organisation's admins, or with none to its
        compliance staff, so that no reminder is dropped for want of a recipient."""
        staff = self.staff[row.organisation_id]
        if row.owner_id is not None and any(row.owner_id in ids for ids in staff.values()):
            return [row.owner_id]  # still an active member (a leaver's work goes to the admins)
        return staff[Role.ADMIN] or staff[Role.COMPLIANCE]

    def escalate_to(self, row: CycleRow) -> list[int]:
        managers = self.staff[row.organisation_id][Role.MANAGER]
        return list(dict.fromkeys([*self.owners(row), *managers]))

    def subject(self, row: CycleRow) -> str:
        duty = self.duties[row.duty_id]
        return subject(duty.code, duty.title, row.service_name, row.provider_name)


def _owed_for_open(row: CycleRow, ctx: SweepContext) -> tuple[list[Owed], list[dt.date]]:
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
            owed += [
                Owed(row.pk, ReminderKind.DUE_SOON, lead, due, u, reason) for u in ctx.owners(row)
            ]
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
        owed += [
            Owed(row.pk, ReminderKind.OVERDUE, week, due, u, reason) for u in ctx.escalate_to(row)
        ]
        later.append(due + dt.timedelta(days=1 + ESCALATION_EVERY_DAYS * (week + 1)))
    return owed, later


def _owed_for_evidence(row: CycleRow, ctx: SweepContext) -> tuple[list[Owed], list[dt.date]]:
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
                Owed(row.pk, ReminderKind.EVIDENCE_EXPIRING, pk, expires, u, reason)
                for u in ctx.owners(row)
            ]
        else:
            later.append(warn_from)
        later.append(expires + dt.timedelta(days=1))
    return owed, later


def _lapsed_on(row: CycleRow, ctx: SweepContext) -> dt.date | None:
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
    row: CycleRow, ctx: SweepContext, result: SweepResult, dry_run: bool
) -> tuple[list[Owed], list[dt.date]]:
    """A met cycle: a recurring duty rolls forward; evidence that has all expired un-meets
    it; otherwise its evidence is watched."""
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
        trigger = CycleTrigger.RECURRENCE
    else:
        assert lapsed is not None
        due, trigger = lapsed, CycleTrigger.EVIDENCE_EXPIRED
        note = f"No longer met: its evidence expired on {fmt(lapsed)}."
    if not dry_run:
        # Rare, and a write with its events: done the way the services always do it. In a
        # savepoint: a write that fails (a due date past the range the database holds) is
        # undone alone, and PostgreSQL goes on accepting the batch's other statements.
        with transaction.atomic():
            open_next_cycle(
                actor=get_system_user(),
                cycle=ObligationCycle.objects.select_related("obligation").get(pk=row.pk),
                due=due,
                trigger=trigger,
                note=note,
                source=EventSource.TASK,
            )
    if recurrence:
        result.rolled_forward += 1
    else:
        result.no_longer_met += 1
    return [], []


def _decide_one(
    row: CycleRow, ctx: SweepContext, result: SweepResult, dry_run: bool
) -> tuple[list[Owed], list[dt.date]]:
    """What one cycle is owed today, and the later dates on which more falls due."""
    if row.current_cycle_id != row.pk or not row.applicable:
        return [], []  # replaced or closed for good: nothing more to watch
    if row.status in OPEN_STATUSES:
        owed, later = _owed_for_open(row, ctx)
        more, more_later = _owed_for_evidence(row, ctx)
        return owed + more, later + more_later
    if row.status == CycleStatus.MET:
        return _decide_met(row, ctx, result, dry_run)
    return [], []


def _decide(
    rows: list[CycleRow], ctx: SweepContext, result: SweepResult, dry_run: bool
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
        ObligationCycle.objects.filter(next_reminder_at__lt=horizon, pk__gt=after)
        .order_by("pk")
        .values("pk")[:SWEEP_BATCH]
    )
    return [
        CycleRow(*values)
        for values in ObligationCycle.objects.filter(pk__any=batch)
        .order_by("pk")
        .values_list(*CYCLE_FIELDS)
    ]


def run_sweep(*, today: dt.date, dry_run: bool = False) -> SweepResult:
    """Decide and deliver today's reminders. Safe to run twice, late, or concurrently."""
    result = SweepResult(date=today, dry_run=dry_run)
    claim = Claim()
    hooks = Claim(WebhookDelivery)
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
            ctx = SweepContext.load(rows, today, duties)
            owed, schedule = _decide(rows, ctx, result, dry_run)
            owed_total += len(owed)
            if dry_run:
                known = already_recorded(owed)
                would_send += [o for o in owed if o.key not in known]
            else:
                # Claimed now: after the claim's last renewal, as each row it holds must be.
                now = timezone.now()
                record_owed(owed, claim.token, now)
                record_webhooks(owed, {r.pk: r.organisation_id for r in rows}, hooks.token, now)
                update_by_pk(ObligationCycle, ["next_reminder_at"], schedule)
        # A long sweep keeps what it recorded, to send each recipient one digest.
        claim.renew()
        hooks.renew()
        if len(rows) < SWEEP_BATCH:
            break
    if dry_run:
        _count_dry_run(would_send, owed_total, result)
        if result.errors():
            raise SweepIncomplete.of(result)
        return result
    # The rows this run recorded and still holds.
    claim.held = claim.rows().count()
    hooks.held = hooks.rows().count()
    result.already_sent = owed_total - claim.held
    try:
        deliver(claim=claim, result=result)
    finally:
        # Each channel's failure is its own: a mail server down does not hold the webhooks.
        deliver_webhooks(claim=hooks, result=result)
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
        1 for o in would_send if o.kind == ReminderKind.OVERDUE and emails.get(o.recipient_id)
    )
