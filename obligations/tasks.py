"""Thin Celery tasks: each calls one function (reminders, services) and is safe to run twice.

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

from obligations.access.retention import purge_access_log as purge_access_log_now
from obligations.access.users import get_system_user
from obligations.dashboard.actions import fill_trend_counts
from obligations.dates import check_plausible_dates, london_today
from obligations.operations.actions import record_heartbeat
from obligations.register.apply import apply_commencements as apply_commencements_now
from obligations.reminders.delivery import DeliveryFailed, deliver
from obligations.reminders.outbox import RETRY_BACKOFF_SECONDS, SweepIncomplete
from obligations.reminders.sweep import run_sweep
from obligations.reminders.webhooks import deliver_webhooks

log = logging.getLogger(__name__)

TRANSPORT_ERRORS = (
    smtplib.SMTPException,
    ConnectionError,
    TimeoutError,
    OperationalError,
    DeliveryFailed,
)
RETRY = {
    "autoretry_for": TRANSPORT_ERRORS,
    "retry_backoff": RETRY_BACKOFF_SECONDS,
    # Redis's visibility timeout outlasts this wait plus the task's time limit (settings).
    "retry_backoff_max": settings.TASK_RETRY_MAX_DELAY,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="obligations.send_reminders", **RETRY)
def send_reminders(date: str | None = None) -> dict[str, Any]:
    """The daily sweep (beat runs it); `date` is YYYY-MM-DD, today in London when absent."""
    today = day_of(date)
    try:
        result = run_sweep(today=today)
    except SweepIncomplete as incomplete:
        log.error(incomplete.result.summary())
        raise
    log.info(result.summary())
    return result.as_json()


@shared_task(name="obligations.deliver_reminders", **RETRY)
def deliver_reminders() -> dict[str, Any]:
    """Send what is pending in the outbox: what the web wrote (e.g. a review request) without
    waiting a night, and, run by beat every few minutes, what a run that died left behind."""
    try:
        result = deliver()
    finally:
        # Each channel's failure is its own: a mail server down does not hold the webhooks.
        posted = deliver_webhooks()
    return {"sent": result.sent, "digests": result.digests, "webhooks": posted}


@shared_task(name="obligations.apply_commencements", **RETRY)
def apply_commencements() -> list[str]:
    """Nightly (beat): duties that came into force get their start day and first due date on
    every register they belong to."""
    started = apply_commencements_now(actor=get_system_user())
    if started:
        log.info("Duties now in force started to apply on: %s", ", ".join(started))
    return started


@shared_task(name="obligations.fill_compliance_counts", **RETRY)
def fill_compliance_counts() -> list[str]:
    """Nightly (beat): store the dashboard trend's counts for the month ends now complete, so
    that a dashboard page only reads them."""
    filled = fill_trend_counts(today=london_today())
    return [day.isoformat() for day in filled]


@shared_task(name="obligations.beat_heartbeat")
def beat_heartbeat() -> None:
    """Every minute (beat): proof for /health/ that beat, the broker and a worker all run. Not
    retried: the next heartbeat is the retry."""
    record_heartbeat()


@shared_task(name="obligations.purge_access_log", **RETRY)
def purge_access_log() -> int:
    """Nightly (beat): remove access-log rows older than ACCESS_LOG_RETENTION_DAYS (none when it
    is 0); the removal is itself recorded in the log."""
    days = settings.ACCESS_LOG_RETENTION_DAYS
    if not days:
        log.info("Access log kept in full: ACCESS_LOG_RETENTION_DAYS is 0")
        return 0
    purged = purge_access_log_now(actor=get_system_user(), days=days)
    log.info("Access log: %d rows older than %d days removed", purged, days)
    return purged


def day_of(date: str | None) -> dt.date:
    """The day a task runs as: `date` (YYYY-MM-DD, in the register's range), else today."""
    if not date:
        return london_today()
    day = dt.date.fromisoformat(date)
    check_plausible_dates(date=day)
    return day
