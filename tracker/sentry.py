"""Optional error tracking: errors of the web, the workers and beat go to a Sentry-compatible
service when SENTRY_DSN is set. Nothing personal or secret is sent, since a register's errors
carry people's work: no user, cookies, headers, request bodies or local variables, no
breadcrumbs (log lines name people), and the secrets in addresses (calendar feeds, password
reset links) are cut out of the URL (tracker/redact.py)."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

from tracker.redact import redact

KEPT_REQUEST_FIELDS = ("method", "url")


def scrub(event: Any, hint: dict[str, Any]) -> Any:
    request = event.get("request")
    if request:
        event["request"] = {k: redact(v) for k, v in request.items() if k in KEPT_REQUEST_FIELDS}
    event.pop("user", None)
    if "transaction" in event:
        event["transaction"] = redact(event["transaction"])
    return event


def start_error_tracking(dsn: str, environment: str, traces_sample_rate: float) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration(monitor_beat_tasks=False)],
        send_default_pii=False,
        include_local_variables=False,
        max_breadcrumbs=0,
        max_request_body_size="never",
        traces_sample_rate=traces_sample_rate,
        before_send=scrub,
        before_send_transaction=scrub,
    )
