"""Access-log retention (obligations/access/retention.py, tasks.purge_access_log), on SQLite
through the ORM and on PostgreSQL through the one function the append-only trigger allows."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from obligations.access.models import AccessAction, AccessLog
from obligations.access.users import get_system_user
from obligations.tasks import purge_access_log


def row(days_ago: float, username: str) -> AccessLog:
    return AccessLog.objects.create(
        at=timezone.now() - dt.timedelta(days=days_ago),
        action=AccessAction.SIGN_IN,
        username=username,
    )


@pytest.mark.django_db
def test_the_nightly_task_removes_only_rows_past_the_retention(settings):
    settings.ACCESS_LOG_RETENTION_DAYS = 730
    row(731, "old")
    row(729, "kept")
    row(1, "recent")
    assert purge_access_log() == 1
    assert set(AccessLog.objects.values_list("username", flat=True)) == {
        "kept",
        "recent",
        django_settings.SYSTEM_USERNAME,
    }
    purged = AccessLog.objects.get(action=AccessAction.ACCESS_LOG_PURGED)
    assert purged.user == get_system_user()
    assert purged.description.startswith("Access log purged: 1 rows from before ")
    assert purge_access_log() == 0  # safe to run twice


@pytest.mark.django_db
def test_zero_keeps_everything(settings):
    settings.ACCESS_LOG_RETENTION_DAYS = 0
    row(5000, "old")
    assert purge_access_log() == 0
    assert AccessLog.objects.count() == 1


@pytest.mark.django_db
def test_the_task_is_scheduled_nightly():
    task = PeriodicTask.objects.get(task="obligations.purge_access_log")
    assert (task.crontab.hour, task.crontab.minute) == ("3", "30")


@pytest.mark.parametrize("value", ["7", "-1", "two years", "100000"])
def test_absurd_retentions_are_refused_at_start(tmp_path: Path, value: str):
    result = subprocess.run(
        [sys.executable, "-c", "import tracker.settings"],
        cwd=Path(django_settings.BASE_DIR),
        env={**os.environ, "TRACKER_VAR_DIR": str(tmp_path), "ACCESS_LOG_RETENTION_DAYS": value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Configuration error: ACCESS_LOG_RETENTION_DAYS must be")
    assert len(result.stderr.splitlines()) == 1
