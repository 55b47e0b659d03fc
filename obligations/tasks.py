"""Thin Celery tasks: each calls one function in reminders.py and is safe to run twice.

Retries with backoff are for transport failures only (the mail server or the broker out of
reach); a bug is not retried into a storm. A run that skipped something after an unexpected
error (SweepIncomplete: each logged with its ids) fails without a retry, for the operator to
see: its skipped cycles come back the next day, its unsent digests at the next delivery.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from typing import Any

from celery import shared_task
from django.conf import settings
from kombu.exceptions import OperationalError

from obligations import reminders

log = logging.getLogger(__name__)

TRANSPORT_ERRORS = (
    smtplib.SMTPException,
    ConnectionError,
    TimeoutError,
    OperationalError,
    reminders.DeliveryFailed,
)
RETRY = {
    "autoretry_for": TRANSPORT_ERRORS,
    "retry_backoff": 30,
    # Redis's visibility timeout outlasts this wait plus the task's time limit (settings).
    "retry_backoff_max": settings.TASK_RETRY_MAX_DELAY,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="obligations.send_reminders", **RETRY)
def send_reminders(date: str | None = None) -> dict[str, Any]:
    """The daily sweep (beat runs it); `date` is YYYY-MM-DD, today in London when absent."""
    today = dt.date.fromisoformat(date) if date else reminders.timezone.localdate()
    try:
        result = reminders.run_sweep(today=today)
    except reminders.SweepIncomplete as incomplete:
        log.error(incomplete.result.summary())
        raise
    log.info(result.summary())
    return result.as_json()


@shared_task(name="obligations.deliver_reminders", **RETRY)
def deliver_reminders() -> dict[str, Any]:
    """Send what is pending in the outbox: what the web wrote (e.g. a review request) without
    waiting a night, and, run by beat every few minutes, what a run that died left behind."""
    result = reminders.deliver()
    return {"sent": result.sent, "digests": result.digests}


def enqueue_delivery() -> None:
    """Ask a worker to deliver the outbox. Called after commit with robust=True: if the broker
    is down this raises, Django logs it, and the save has already succeeded; beat's periodic
    delivery sends the rows once the broker is back."""
    deliver_reminders.apply_async(retry=False)
