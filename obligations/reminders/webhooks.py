"""Delivering the outbox's webhook channel: one POST per row, claimed, renewed and settled by
the same Claim as e-mailed reminders (outbox.py, delivery.py).

A row is settled as sent once the receiver answers 2xx. A 5xx, a 408 or 429, a timeout or no
connection gives the row back with a wait before its next attempt (outbox.retry_delay, or the
receiver's Retry-After up to settings.WEBHOOK_RETRY_AFTER_MAX_SECONDS), and the run raises
DeliveryFailed so that Celery retries it; after settings.WEBHOOK_MAX_ATTEMPTS the row is given
up. Any other answer (4xx, a redirect: never followed) is given up at once. Each failure is
kept on the row, for the admin.

The duplicate window is the e-mail's: a receiver that accepted a POST the run did not live to
record gets it again, with the same Idempotency-Key (the row's id), so it can tell.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import NamedTuple
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from obligations.links import object_url
from obligations.reminders import transport
from obligations.reminders.delivery import (
    DeliveryFailed,
    mark_sent,
    release,
    settle,
    still_relevant,
)
from obligations.reminders.models import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookKind,
    WebhookStatus,
)
from obligations.reminders.outbox import Claim, SweepResult, retry_delay, webhook_event
from obligations.reminders.payloads import Message, heading, payload
from obligations.reminders.sealed import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    loopback_allowed,
    sign,
    unseal,
    validate_webhook_url,
)

log = logging.getLogger(__name__)


class HookRow(NamedTuple):
    """A pending webhook delivery as delivery reads it (still_relevant's fields included)."""

    pk: int
    kind: str
    step: int
    deadline: dt.date
    reason: str
    endpoint_id: int
    attempts: int
    cycle_id: int | None
    status: str | None
    due_date: dt.date | None
    current_cycle_id: int | None
    applicable: bool | None
    obligation_id: int | None
    from_notice: bool


HOOK_FIELDS = (
    "pk",
    "kind",
    "step",
    "deadline",
    "reason",
    "endpoint_id",
    "attempts",
    "cycle_id",
    "cycle__status",
    "cycle__due_date",
    "cycle__obligation__current_cycle_id",
    "cycle__obligation__applicable",
    "cycle__obligation_id",
    "cycle__obligation__ofcom_notice_id",
    "cycle__obligation__technology_notice_id",
)


def _pending(claim: Claim) -> Iterator[HookRow]:
    rows = claim.rows().order_by("pk").values_list(*HOOK_FIELDS).iterator(chunk_size=2000)
    for *values, ofcom_notice, technology_notice in rows:
        yield HookRow._make([*values, bool(ofcom_notice or technology_notice)])


class Outcome(NamedTuple):
    delivered: bool
    retry: bool = False
    error: str = ""
    wait: dt.timedelta | None = None  # the receiver's Retry-After, bounded


def deliver_webhooks(*, claim: Claim | None = None, result: SweepResult | None = None) -> int:
    """Post every pending webhook row this run holds or can take over; how many were
    delivered. Raises DeliveryFailed if any is to be tried again."""
    claim = claim or Claim(WebhookDelivery)
    claim.take_over()
    endpoints = {
        e.pk: e
        for e in WebhookEndpoint.objects.filter(
            pk__in=claim.rows().values("endpoint_id")
        ).select_related("organisation")
    }
    delivered, failed, retrying = 0, 0, 0
    for row in _pending(claim):
        endpoint = endpoints[row.endpoint_id]
        if not endpoint.active or (row.cycle_id is not None and not still_relevant(row)):  # type: ignore[arg-type]
            settle([row.pk], claim, WebhookStatus.CANCELLED)
            continue
        if not (claim.renew() and claim.renew_among([row.pk])):
            log.warning("webhook delivery stalled past its lease: it leaves the rest and stops")
            claim.give_back()
            break
        try:
            outcome = post(endpoint, row)
        except Exception:
            # A post that cannot be built (a bug) costs its row alone, given up at once: a bug
            # is not retried into a storm, and the next rows still go.
            log.exception("webhook delivery %s not sent after an error", row.pk)
            failed += _give_up(row, claim, "Not sent after an error in the tracker: see its log.")
            continue
        if outcome.delivered:
            delivered += mark_sent([row.pk], claim)
        elif outcome.retry and row.attempts + 1 < settings.WEBHOOK_MAX_ATTEMPTS:
            _wait(row, claim, outcome)
            retrying += 1
        else:
            failed += _give_up(row, claim, outcome.error)
    if result is not None:
        result.webhooks_sent += delivered
        result.webhooks_failed += failed
    if retrying:
        raise DeliveryFailed(f"{retrying} webhook post(s) to be tried again")
    return delivered


def _wait(row: HookRow, claim: Claim, outcome: Outcome) -> None:
    log.warning("webhook delivery %s failed, to be tried again: %s", row.pk, outcome.error)
    wait = outcome.wait or retry_delay(row.attempts + 1)
    claim.held_among([row.pk]).update(
        attempts=F("attempts") + 1,
        last_error=outcome.error[:300],
        retry_at=timezone.now() + wait,
    )
    release([row.pk], claim)


def _give_up(row: HookRow, claim: Claim, error: str) -> int:
    log.warning("webhook delivery %s given up: %s", row.pk, error)
    given_up = claim.held_among([row.pk]).update(
        attempts=F("attempts") + 1,
        last_error=error[:300],
        status=WebhookStatus.FAILED,
        sent_at=timezone.now(),
    )
    claim.held -= given_up
    return given_up


def message(endpoint: WebhookEndpoint, row: HookRow) -> Message:
    site = settings.SITE_URL.rstrip("/")
    event = "test"
    link = site + "/"
    if row.obligation_id is not None:
        event = webhook_event(row.kind, row.from_notice) or "digests"
        link = site + object_url("admin:obligations_obligation_change", row.obligation_id)
    return Message(
        id=row.pk,
        event=event,
        kind=row.kind,
        heading=heading(row.kind, event),
        text=row.reason,
        deadline=row.deadline,
        organisation=endpoint.organisation.name,
        link=link,
    )


def post(endpoint: WebhookEndpoint, row: HookRow) -> Outcome:
    """One POST of one row, and what came of it. Never raises for what a network or a
    receiver can do."""
    try:
        url = unseal(endpoint.url_sealed)
        secret = unseal(endpoint.secret_sealed) if endpoint.kind == WebhookKind.SIGNED else ""
        validate_webhook_url(url)
    except InvalidToken:
        return Outcome(False, error="The stored address cannot be read: enter it again.")
    except ValidationError as invalid:
        return Outcome(False, error=" ".join(invalid.messages))
    body = json.dumps(payload(endpoint.kind, message(endpoint, row))).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "osa-tracker-webhooks",
        IDEMPOTENCY_HEADER: str(row.pk),
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, int(time.time()), body)
    try:
        answer = transport.post(
            url,
            body,
            headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            loopback_allowed=loopback_allowed(urlsplit(url).scheme),
        )
    except transport.AddressRefused as refused:
        return Outcome(False, error=str(refused))
    except (http.client.HTTPException, OSError) as exc:
        # Cut off at the deadline, or never answered: tried again later, like a 5xx.
        return Outcome(False, retry=True, error=f"No answer from the receiver: {exc}")
    if 200 <= answer.status < 300:
        return Outcome(True)
    return _refused(answer)


def _refused(answer: transport.Answer) -> Outcome:
    code = answer.status
    error = f"The receiver answered {code} {answer.reason}"
    if 300 <= code < 400:
        return Outcome(False, error=f"{error}: a redirect, which is not followed.")
    if code >= 500 or code in (408, 429):
        return Outcome(False, retry=True, error=error, wait=_retry_after(answer))
    return Outcome(False, error=error)


def _retry_after(answer: transport.Answer) -> dt.timedelta | None:
    """The receiver's Retry-After (seconds, or an HTTP date), at most the configured bound."""
    value = (answer.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = (
            float(value)
            if value.isdigit()
            else (parsedate_to_datetime(value) - timezone.now()).total_seconds()
        )
    except (TypeError, ValueError):
        return None
    return dt.timedelta(seconds=min(max(seconds, 0), settings.WEBHOOK_RETRY_AFTER_MAX_SECONDS))
