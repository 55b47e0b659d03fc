"""The logging configuration: everything to standard error, through one handler, so that the
web server (gunicorn's own loggers included), the workers and beat write the same shape."""

from __future__ import annotations

from typing import Any

TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# python-json-logger: one object a line, keys time (ISO 8601, UTC), level, logger, message,
# request_id, plus whatever `extra=` a call passes.
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(request_id)s"


def logging_config(*, json: bool, level: str) -> dict[str, Any]:
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        }
        if json
        else {"format": TEXT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "tracker.requestid.RequestIdFilter"},
            "redact": {"()": "tracker.redact.RedactSecretsFilter"},
        },
        "formatters": {"default": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id", "redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        # gunicorn configures its own two loggers with this dict (tracker/gunicorn.py): here they
        # hand their records to the root's handler instead of printing their own format.
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
            # WeasyPrint logs each step of every PDF (and of its own start-up) at INFO: only
            # what went wrong, such as a refused URL, is worth a line.
            "weasyprint.progress": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }
