"""The checks behind the health endpoints (django-health-check), for those who watch the
installation. Two endpoints, because they answer different people:

- /health/live/ for a load balancer: this web process answers and reaches the database.
  Nothing shared beyond the database takes it out of rotation, so a Redis blip or beat
  stopped for an upgrade never takes every web server down at once.
- /health/ for monitoring: the database, the broker, the evidence storage and beat's
  heartbeat. 200 healthy, 503 when any check fails; `?format=json` names what failed.

Every check reads and never writes (no probe file in the evidence bucket, whose versions are
kept), and each is named plainly: no host, port or bucket in what anyone may fetch.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

from obligations.operations.models import BEAT, Heartbeat

# The periodic task that carries beat's heartbeat (migration 0030); staff may change its
# interval in the admin, and the check reads it from there.
HEARTBEAT_TASK = "Beat heartbeat"
# A name that is never stored: asking whether it exists proves the storage answers.
PROBE_NAME = "health-probe/never-stored"


class ThreadCheck(HealthCheck):
    """A check run in a thread of the view's executor: its database connection is closed
    when it ends, so a database that restarted is met with a new one next time."""

    def run(self) -> None:
        try:
            self.check()
        finally:
            connection.close()

    def check(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return type(self).__name__


@dataclasses.dataclass(repr=False)
class Database(ThreadCheck):
    def check(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as exc:
            raise ServiceUnavailable("The database does not answer") from exc


@dataclasses.dataclass(repr=False)
class Broker(ThreadCheck):
    """Redis answers PING; on a laptop, the file-system broker's folder is there and
    writable."""

    def check(self) -> None:
        if settings.REDIS_URL:
            client = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=3, socket_connect_timeout=3
            )
            try:
                client.ping()
            except redis.RedisError as exc:
                raise ServiceUnavailable("The broker (Redis) does not answer") from exc
            finally:
                client.close()
            return
        folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
        if not (folder.is_dir() and os.access(folder, os.W_OK)):
            raise ServiceUnavailable("The broker's queue folder is missing or read-only")


@dataclasses.dataclass(repr=False)
class EvidenceStorage(ThreadCheck):
    """The evidence store answers (on S3 a HEAD request with the tracker's credentials) and,
    on local disk, its folder can be written."""

    def check(self) -> None:
        storage = storages["default"]
        try:
            storage.exists(PROBE_NAME)
        except Exception as exc:
            raise ServiceUnavailable("The evidence storage does not answer") from exc
        if isinstance(storage, FileSystemStorage):
            location = Path(storage.location)
            writable = location.is_dir() and os.access(location, os.W_OK)
            # A fresh installation has no folder until the first upload makes it.
            if location.exists() and not writable:
                raise ServiceUnavailable("The evidence folder cannot be written")


@dataclasses.dataclass(repr=False)
class BeatHeartbeat(ThreadCheck):
    """Beat queues a heartbeat every interval and a worker records it: older than twice the
    interval means beat has stopped, or no worker is taking tasks."""

    def check(self) -> None:
        task = PeriodicTask.objects.select_related("interval").filter(name=HEARTBEAT_TASK).first()
        if task is None or task.interval is None or not task.enabled:
            raise ServiceUnavailable("The beat heartbeat task is not scheduled")
        allowed = 2 * task.interval.schedule.run_every
        last = Heartbeat.objects.filter(name=BEAT).values_list("at", flat=True).first()
        if last is None:
            raise ServiceUnavailable("No heartbeat from beat yet")
        age = timezone.now() - last
        if age > allowed:
            raise ServiceUnavailable(
                f"No heartbeat from beat for {int(age.total_seconds())} s "
                f"(allowed {int(allowed.total_seconds())} s)"
            )


class Health(HealthCheckView):
    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = await super().dispatch(request, *args, **kwargs)
        # The package answers 500 when a check fails; 503 is what load balancers and monitors
        # read as "this instance is up but cannot serve", and no error tracker records it.
        if response.status_code == 500:
            response.status_code = 503
        return response


def health_view() -> Any:
    return Health.as_view(checks=[Database, Broker, EvidenceStorage, BeatHeartbeat])


def liveness_view() -> Any:
    return Health.as_view(checks=[Database])
