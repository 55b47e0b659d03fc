"""A request id on every log line: taken from a sane `X-Request-ID` sent by the proxy in
front (only when TRUSTED_PROXIES says there is one: a client must not choose the ids of the
log lines it causes), or made here; returned in the response's `X-Request-ID`, and carried
by Celery tasks as their task id, so that one person's request can be followed through
every process's logs."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import signals
from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
# What a proxy may hand us: short, and nothing that could forge a second log field or line.
SANE = re.compile(r"[A-Za-z0-9._:-]{1,64}")

current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get(HEADER, "") if settings.TRUSTED_PROXIES else ""
        request_id = offered if SANE.fullmatch(offered) else uuid.uuid4().hex
        # Left set when the response leaves this middleware: Django logs a failed request's
        # line after it; `request_finished` clears it (tracker/celery.py does so for tasks).
        current.set(request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


def request_finished(**kwargs: Any) -> None:
    current.set("-")


signals.request_finished.connect(request_finished, dispatch_uid="tracker.requestid")


class RequestIdFilter(logging.Filter):
    """Puts the current request (or task) id on every record, "-" outside both."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current.get()
        return True


def task_started(task_id: str | None = None, **kwargs: Any) -> None:
    current.set(task_id or "-")


task_ended = request_finished
