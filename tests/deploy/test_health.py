"""/health/: what a load balancer or monitor reads. The checks run in threads, so these tests
commit (transactional_db) for the checks to see the heartbeat."""

from __future__ import annotations

import datetime as dt
import importlib
import json

import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client
from django_celery_beat.models import PeriodicTask

from obligations.operations.health import HEARTBEAT_TASK
from obligations.operations.models import BEAT, Heartbeat
from obligations.tasks import beat_heartbeat

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def heartbeat_scheduled() -> None:
    """The schedule migration 0030 makes (a committing test's database is emptied after it)."""
    migration = importlib.import_module("obligations.migrations.0030_heartbeat")
    migration.schedule(apps, None)


def health() -> tuple[int, dict[str, str]]:
    response = Client().get("/health/", HTTP_ACCEPT="application/json")
    return response.status_code, json.loads(response.content)


def failed(report: dict[str, str]) -> dict[str, str]:
    return {check: status for check, status in report.items() if status != "OK"}


def test_healthy_once_beat_has_sent_a_heartbeat_through_a_worker():
    status, report = health()
    assert status == 503
    assert failed(report) == {"BeatHeartbeat()": "Unavailable: No heartbeat from beat yet"}
    beat_heartbeat()
    status, report = health()
    assert (status, failed(report)) == (200, {})
    # The database, the broker (Redis when configured) and the evidence storage were checked.
    assert [name.split("(")[0] for name in report] == [
        "Database",
        "Redis" if settings.REDIS_URL else "FileSystemBroker",
        "Storage",
        "BeatHeartbeat",
    ]


def test_a_heartbeat_older_than_twice_its_interval_is_unhealthy(clock):
    task = PeriodicTask.objects.get(name=HEARTBEAT_TASK)
    assert (task.task, task.interval.every, task.interval.period) == (
        "obligations.beat_heartbeat",
        60,
        "seconds",
    )
    beat_heartbeat()
    clock.shift(dt.timedelta(seconds=120))
    assert health()[0] == 200
    clock.shift(dt.timedelta(seconds=1))
    status, report = health()
    assert status == 503
    assert failed(report) == {
        "BeatHeartbeat()": "Unavailable: No heartbeat from beat for 121 s (allowed 120 s)"
    }
    # Staff slowed the heartbeat in the admin: the check reads the interval from there.
    task.interval.every = 300
    task.interval.save()
    assert health()[0] == 200


def test_a_stopped_heartbeat_task_is_unhealthy():
    beat_heartbeat()
    PeriodicTask.objects.filter(name=HEARTBEAT_TASK).update(enabled=False)
    status, report = health()
    assert status == 503
    assert failed(report) == {
        "BeatHeartbeat()": "Unavailable: The beat heartbeat task is not scheduled"
    }


def test_a_heartbeat_is_one_row_moved_forward(clock):
    beat_heartbeat()
    clock.shift(dt.timedelta(minutes=1))
    beat_heartbeat()
    assert list(Heartbeat.objects.values_list("name", flat=True)) == [BEAT]


def test_a_broker_out_of_reach_is_unhealthy(settings):
    """On PostgreSQL's leg the broker is Redis: one that does not answer fails the check (the
    end-to-end test stops the real one, tests/deploy/test_topology.py)."""
    beat_heartbeat()
    if not settings.REDIS_URL:
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "data_folder_in": "/nonexistent/queue",
        }
        expected = {
            "FileSystemBroker()": "Unavailable: The broker's queue folder is missing or read-only"
        }
    else:
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        expected = {
            "Redis(db=0, host='127.0.0.1', port=1)": (
                "Unavailable: Unable to connect to Redis: Connection Error"
            )
        }
    status, report = health()
    assert status == 503
    assert failed(report) == expected
