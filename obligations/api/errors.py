"""Every API error is JSON: {"error": "<what went wrong>", "fields": {<field>: [messages]}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from obligations.services import AssessmentError, NoticeError, TransitionError
from obligations.uploads import EvidenceRefused


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
