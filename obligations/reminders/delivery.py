"""Delivering the outbox: one digest per recipient, claimed by a conditional update with a
lease, marked sent once the mail server accepts it."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import NamedTuple, Protocol

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from obligations.access.models import Membership
from obligations.dates import london_today
from obligations.links import object_url
from obligations.register.states import OPEN_STATUSES, CycleStatus
from obligations.reminders.models import ReminderKind, ReminderStatus
from obligations.reminders.outbox import Claim, SweepIncomplete, SweepResult

log = logging.getLogger(__name__)


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


class Relevance(Protocol):
    """What decides whether an outbox row still matters, whichever its channel."""

    @property
    def kind(self) -> str: ...
    @property
    def deadline(self) -> dt.date: ...
    @property
    def cycle_id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def due_date(self) -> dt.date | None: ...
    @property
    def current_cycle_id(self) -> int | None: ...
    @property
    def applicable(self) -> bool: ...


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


def still_relevant(row: Relevance) -> bool:
    """A reminder decided earlier is sent only if it is still true when it comes to be sent."""
    if row.current_cycle_id != row.cycle_id or not row.applicable:
        return False
    if row.kind == ReminderKind.REVIEW_REQUESTED:
        return row.status == CycleStatus.READY_FOR_REVIEW
    if row.kind == ReminderKind.EVIDENCE_EXPIRING:
        return row.status in (*OPEN_STATUSES, CycleStatus.MET)
    return row.status in OPEN_STATUSES and row.due_date == row.deadline


def settle(ids: Sequence[int], claim: Claim, status: str) -> int:
    if not ids:
        return 0
    settled = claim.held_among(ids).update(status=status, sent_at=timezone.now())
    claim.held -= settled
    return settled


def release(ids: Sequence[int], claim: Claim) -> None:
    """Give rows back after a failed send, so a retry takes them at once."""
    claim.held -= claim.held_among(ids).update(claim="", claimed_at=None)


SECTIONS = (
    (ReminderKind.OVERDUE, "Overdue"),
    (ReminderKind.DUE_SOON, "Due soon"),
    (ReminderKind.EVIDENCE_EXPIRING, "Evidence expiring"),
    (ReminderKind.REVIEW_REQUESTED, "Waiting for your review"),
)


@dataclass
class Digest:
    """One recipient's rows as they stream past, kept small whatever their number: the ids
    (8 bytes each), and of each section its count and most urgent items. A digest of 380,000
    rows, a list of them, took 200 MB at a million obligations."""

    recipient_id: int
    limit: int
    relevant: array[int] = field(default_factory=lambda: array("q"))
    cancelled: array[int] = field(default_factory=lambda: array("q"))
    cycles: array[int] = field(default_factory=lambda: array("q"))
    counts: Counter[str] = field(default_factory=Counter)
    shown: dict[str, list[PendingRow]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, recipient_id: int, rows: Iterable[PendingRow], members: set[tuple[int, int]]
    ) -> Digest:
        # Only a member of the organisation is told of its work: a leaver's rows are cancelled,
        # as are rows no longer relevant.
        digest = cls(recipient_id, settings.REMINDER_DIGEST_MAX_ITEMS)
        for r in rows:
            if (r.recipient_id, r.organisation_id) not in members or not still_relevant(r):
                digest.cancelled.append(r.pk)
                continue
            digest.relevant.append(r.pk)
            digest.cycles.append(r.cycle_id)
            digest.counts[r.kind] += 1
            shown = digest.shown.setdefault(r.kind, [])
            if len(shown) < digest.limit:  # rows come most urgent first
                shown.append(r)
        return digest


def digest_message(recipient: User, digest: Digest) -> EmailMultiAlternatives:
    """One e-mail, plain text and HTML, each item linking to its obligation in the admin.

    A section lists its most urgent items up to REMINDER_DIGEST_MAX_ITEMS and counts the rest,
    with a link to the full list: a digest is for reading, the admin for everything.
    """
    site = settings.SITE_URL.rstrip("/")
    # Not reverse() per item: 13,000 of them took a twentieth of a 100,000-cycle sweep.
    change = "admin:obligations_obligation_change"
    sections = []
    for kind, label in SECTIONS:
        count = digest.counts[kind]
        if not count:
            continue
        shown = [
            {"reason": r.reason, "url": site + object_url(change, r.obligation_id)}
            for r in digest.shown[kind]
        ]
        sections.append(
            {"label": label, "count": count, "items": shown, "more": count - len(shown)}
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
    members = set(
        Membership.objects.active().filter(user__in=held).values_list("user_id", "organisation_id")
    )
    mailer = Mailer()
    try:
        for recipient_id, group in groupby(_pending(claim), key=lambda r: r.recipient_id):
            digest = Digest.of(recipient_id, group, members)
            if not claim.renew():
                _stalled(claim)
                break
            result.cancelled += settle(digest.cancelled, claim, ReminderStatus.CANCELLED)
            if not _deliver_one(mailer, recipients[recipient_id], digest, claim, result, failures):
                _stalled(claim)
                break
    finally:
        mailer.close()
    if failures:
        first = failures[0]
        raise DeliveryFailed(f"{len(failures)} digest(s) not sent: {first!r}") from first
    if result.errors():
        raise SweepIncomplete.of(result)
    return result


def _stalled(claim: Claim) -> None:
    log.warning(
        "reminder delivery stalled past its lease and another run took over some of its rows: "
        "it leaves the rest to the next run and stops"
    )
    claim.give_back()


class Mailer:
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
    mailer: Mailer,
    recipient: User,
    digest: Digest,
    claim: Claim,
    result: SweepResult,
    failures: list[Exception],
) -> bool:
    """Send one digest; False if its rows were no longer all held when it came to be sent."""
    ids = digest.relevant
    if not ids:
        return True
    if not recipient.email or not recipient.is_active:
        result.in_app_only += settle(ids, claim, ReminderStatus.IN_APP)
        return True
    if not claim.renew_among(ids):
        return False
    try:
        accepted = mailer.send(digest_message(recipient, digest))
    except TRANSPORT_ERRORS as exc:  # the mail server refused or could not be reached
        log.warning("digest to %s not sent: %r", recipient.email, exc)
        mailer.close()  # the next digest opens a fresh connection
        release(ids, claim)
        failures.append(exc)
        return True
    except Exception:
        # A digest that cannot be built or sent (a bug, an address the mail library refuses)
        # costs its recipient alone: the next recipients still get theirs.
        log.exception(
            "reminder delivery: digest to user %s (cycles %s) not sent after an error",
            recipient.pk,
            sorted(set(digest.cycles)),
        )
        mailer.close()
        release(ids, claim)
        result.not_sent += 1
        return True
    if not accepted:
        release(ids, claim)
        failures.append(
            RuntimeError(f"the mail backend did not accept the digest to {recipient.email}")
        )
        return True
    # The documented window: accepted by the mail server, not yet marked sent.
    marked = mark_sent(ids, claim)
    result.sent += marked
    result.escalations += digest.counts[ReminderKind.OVERDUE]
    result.digests += 1
    if recipient.pk not in result._recipients:
        result._recipients.add(recipient.pk)
        result.recipients += 1
    return True


def mark_sent(ids: Sequence[int], claim: Claim) -> int:
    return settle(ids, claim, ReminderStatus.SENT)
