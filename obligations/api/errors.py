"""Every API error is JSON: {"error": "<what went wrong>", "fields": {<field>: [messages]}}.

DRF's views answer through `handle`; what happens outside them or escapes them (an unknown
address, a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a bug, the database going away) reaches
Django's error handlers, which `tracker.urls` points here: under /api/ they answer in the
same shape, elsewhere with Django's own pages.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from obligations.assessments.actions import AssessmentError
from obligations.notices.actions import NoticeError
from obligations.register.states import TransitionError
from obligations.register.uploads import EvidenceRefused


def _flatten(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [f"{key}: {msg}" for key, value in detail.items() for msg in _flatten(value)]
    if isinstance(detail, list):
        return [msg for item in detail for msg in _flatten(item)]
    return [str(detail)]


def _as_api_exception(exc: Exception) -> Exception:
    """The service layer's refusals, as the HTTP errors they are."""
    if isinstance(exc, EvidenceRefused):
        error = exceptions.APIException(str(exc))
        error.status_code = exc.status
        return error
    if isinstance(exc, (TransitionError, NoticeError, AssessmentError)):
        return exceptions.ValidationError({"non_field_errors": [str(exc)]})
    if isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return exceptions.ValidationError(detail)
    return exc


def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = exception_handler(_as_api_exception(exc), context)
    if response is None:
        return None  # a real bug: Django's 500 handling (and its logging) takes it
    detail = response.data
    fields: dict[str, Any] = {}
    if isinstance(detail, dict) and "detail" not in detail:
        fields = {k: v for k, v in detail.items() if k != "non_field_errors"}
        general = detail.get("non_field_errors")
        message = "; ".join(_flatten(general)) if general else "Some fields are not valid."
        if not general and len(fields) == 1:
            message = _flatten(fields)[0]
    elif isinstance(detail, list):
        message = "; ".join(_flatten(detail))
    else:
        message = str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)
    response.data = {"error": message, "fields": fields}
    return response


# --- Django's error handlers (tracker.urls) ---------------------------------

API_PREFIX = "/api/"
DATABASE_DOWN = "The tracker cannot reach its database just now; try again in a few minutes."
# How long a client should wait before trying again when the database is away.
RETRY_AFTER_SECONDS = 60


def _json(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message, "fields": {}}, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400: a request it refused before any view (a suspicious one, a body too big)."""
    if not request.path.startswith(API_PREFIX):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return _json(
            413,
            f"The request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,}-byte "
            "limit; nothing was changed.",
        )
    return _json(400, "The request could not be read.")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not request.path.startswith(API_PREFIX):
        return defaults.page_not_found(request, exception)
    return _json(404, "Not found: there is no such address in the API (see /api/docs/).")


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500, called while the exception is being handled (it has been logged)."""
    if not request.path.startswith(API_PREFIX):
        return defaults.server_error(request)
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        response = _json(503, DATABASE_DOWN)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return _json(500, "Something went wrong on our side; it has been logged.")
