"""Access-log retention: rows older than ACCESS_LOG_RETENTION_DAYS are removed nightly
(tasks.purge_access_log). On PostgreSQL the log is append-only by trigger, and the one way
to delete from it is osa_purge_access_log (migrations 0033 and 0035), which refuses anything
newer than the retention the tables' owner set (never less than MIN_RETENTION_DAYS), and
everything when the log is kept for ever, whoever calls it."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from obligations.access.models import AccessAction, AccessLog
from obligations.access.signin import record_access

# The function's own floor (migration 0033) and the setting's least value (settings.py).
MIN_RETENTION_DAYS = 30


def purge_access_log(*, actor: User, days: int) -> int:
    """Remove access-log rows older than `days` days; the removal itself goes on record (a row
    saying how many, before when, by whom). Returns how many were removed."""
    if days < MIN_RETENTION_DAYS:
        raise ValueError(f"The access log keeps at least {MIN_RETENTION_DAYS} days, not {days}.")
    before = timezone.now() - dt.timedelta(days=days)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT osa_purge_access_log(%s)", [before])
                purged = int(cursor.fetchone()[0])
        else:
            # SQLite keeps no trigger (migration 0010): the ORM deletes.
            purged, _ = AccessLog.objects.filter(at__lt=before).delete()
        if purged:
            record_access(
                user=actor,
                action=AccessAction.ACCESS_LOG_PURGED,
                request=None,
                description=f"Access log purged: {purged} rows from before "
                f"{before:%Y-%m-%d %H:%M} UTC (kept for {days} days)",
            )
    return purged
