"""/health/: what a load balancer or monitor reads. The checks run in threads, so these tests
commit (transactional_db) for the checks to see the heartbeat."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os

import pytest
from django.apps import apps
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
    assert failed(report) == {"BeatHeartbeat": "Unavailable: No heartbeat from beat yet"}
    beat_heartbeat()
    status, report = health()
    assert (status, failed(report)) == (200, {})
    # Plain names: no host, port or bucket for whoever asks.
    assert list(report) == ["Database", "Broker", "EvidenceStorage", "BeatHeartbeat"]


def test_a_load_balancer_asks_only_whether_this_process_reaches_the_database():
    """No heartbeat (beat stopped for an upgrade) and no broker: /health/ is unhealthy, but
    the web servers stay in rotation."""
    response = Client().get("/health/live/", HTTP_ACCEPT="application/json")
    assert (response.status_code, json.loads(response.content)) == (200, {"Database": "OK"})
    assert health()[0] == 503


def test_the_checks_write_nothing_to_the_evidence_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {"location": tmp_path / "ev"}},
    }
    (tmp_path / "ev").mkdir()
    beat_heartbeat()
    for _ in range(3):
        assert health()[0] == 200
    assert list((tmp_path / "ev").iterdir()) == []
    if os.geteuid() == 0:
        return  # root writes anywhere: a read-only folder cannot be made here
    (tmp_path / "ev").chmod(0o500)
    try:
        status, report = health()
    finally:
        (tmp_path / "ev").chmod(0o700)
    assert (status, failed(report)) == (
        503,
        {"EvidenceStorage": "Unavailable: The evidence folder cannot be written"},
    )


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
        "BeatHeartbeat": "Unavailable: No heartbeat from beat for 121 s (allowed 120 s)"
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
        "BeatHeartbeat": "Unavailable: The beat heartbeat task is not scheduled"
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
    if settings.REDIS_URL:
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        expected = "Unavailable: The broker (Redis) does not answer"
    else:
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "data_folder_in": "/nonexistent/queue",
        }
        expected = "Unavailable: The broker's queue folder is missing or read-only"
    status, report = health()
    assert (status, failed(report)) == (503, {"Broker": expected})
