"""The checks behind /health/ (django-health-check): the database, the broker, the evidence
storage, and beat's heartbeat. A load balancer or monitor reads the status code: 200 healthy,
503 when any check fails; `?format=json` names what failed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from health_check.base import HealthCheck
from health_check.checks import Database, Storage
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView
from redis.asyncio import Redis as RedisClient

from obligations.operations.models import BEAT, Heartbeat

# The periodic task that carries beat's heartbeat (migration 0030); staff may change its
# interval in the admin, and the check reads it from there.
HEARTBEAT_TASK = "Beat heartbeat"


@dataclasses.dataclass
class BeatHeartbeat(HealthCheck):
    """Beat queues a heartbeat every interval and a worker records it: older than twice the
    interval means beat has stopped, or no worker is taking tasks."""

    def run(self) -> None:
        # Run in a thread of the check's executor: its connection is closed here, so a
        # database that restarted is met with a new one next time.
        try:
            self._check()
        finally:
            connection.close()

    def _check(self) -> None:
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


@dataclasses.dataclass
class FileSystemBroker(HealthCheck):
    """Kombu's file-system broker (a laptop): its queue folder is there and writable."""

    def run(self) -> None:
        folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
        if not folder.is_dir() or not _writable(folder):
            raise ServiceUnavailable("The broker's queue folder is missing or read-only")


def _writable(folder: Path) -> bool:
    probe = folder / ".health"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return False
    return True


def checks() -> list[Any]:
    broker: Any = (
        (Redis, {"client_factory": _redis_client}) if settings.REDIS_URL else FileSystemBroker
    )
    return [Database, broker, Storage, BeatHeartbeat]


def _redis_client() -> RedisClient:
    return RedisClient.from_url(settings.REDIS_URL, socket_timeout=3, socket_connect_timeout=3)


class Health(HealthCheckView):
    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = await super().dispatch(request, *args, **kwargs)
        # The package answers 500 when a check fails; 503 is what load balancers and monitors
        # read as "this instance is up but cannot serve", and no error tracker records it.
        if response.status_code == 500:
            response.status_code = 503
        return response


def health_view() -> Any:
    return Health.as_view(checks=checks())
