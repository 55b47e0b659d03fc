"""Secrets that travel in addresses, cut out of whatever is logged or reported: a calendar
feed's address is its credential, and a password reset link's token signs its holder in."""

from __future__ import annotations

import logging
import re
from typing import Any

SECRETS = (
    (re.compile(r"(/calendar/)[^/\s?#\"']+(\.ics)"), r"\1[secret]\2"),
    (re.compile(r"(/reset/[^/\s?#\"']+/)(?!set-password/)[^/\s?#\"']+"), r"\1[token]"),
)


def redact(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    for pattern, replacement in SECRETS:
        value = pattern.sub(replacement, value)
    return value


# A record's own attributes; anything else was passed as `extra` (Django passes the request).
STANDARD = {*vars(logging.makeLogRecord({})), "message", "asctime", "request_id"}


class RedactSecretsFilter(logging.Filter):
    """On the handler: every line is written with the secrets cut out, gunicorn's access
    log and Django's "Not Found: /calendar/..." warnings included, and so is each `extra`
    value the JSON lines carry (Django's request, shown as its method and path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for key, value in list(vars(record).items()):
            if key not in STANDARD and not isinstance(value, int | float | bool | None):
                setattr(record, key, redact(str(value)))
        return True
