"""Optional error tracking: errors of the web, the workers and beat go to a Sentry-compatible
service when SENTRY_DSN is set. Nothing personal is sent: no user names, addresses, cookies or
request bodies (send_default_pii off), since a register's errors carry people's work."""

from __future__ import annotations

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration


def start_error_tracking(dsn: str, environment: str, traces_sample_rate: float) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration(monitor_beat_tasks=False)],
        send_default_pii=False,
        traces_sample_rate=traces_sample_rate,
        max_request_body_size="never",
    )
