"""What an operator reads: JSON log lines with a request id, errors sent to Sentry without
personal data, and a mail server that hangs not hanging the worker."""

from __future__ import annotations

import gzip
import json
import logging
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from logging.config import dictConfig
from pathlib import Path

import brotli
import pytest
from django.core.mail import send_mail
from django.test import Client

from tests.deploy.test_settings import production, python
from tracker.logs import logging_config
from tracker.requestid import HEADER
from tracker.sentry import scrub

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines() -> Iterator[list[dict[str, str]]]:
    """The tracker's production logging configuration, writing into a list."""
    lines: list[dict[str, str]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(self.format(record)))

    config = logging_config(json=True, level="INFO")
    config["handlers"]["console"] = {
        "()": Collect,
        "formatter": "default",
        "filters": ["request_id", "redact"],
    }
    dictConfig(config)
    try:
        yield lines
    finally:
        logging.config.dictConfig(logging_config(json=False, level="INFO"))


def test_a_request_logs_json_lines_carrying_its_id(json_lines):
    response = Client().get("/no-such-page/")
    request_id = response[HEADER]
    assert len(request_id) == 32
    [line] = [line for line in json_lines if line["logger"] == "django.request"]
    assert line["level"] == "WARNING"
    assert line["message"] == "Not Found: /no-such-page/"
    assert line["request_id"] == request_id
    assert line["time"].startswith("2026-11-24T10:00:00")


def test_the_proxys_request_id_is_kept_when_plain_and_replaced_when_not(json_lines, settings):
    # A client cannot choose its request's id: only a proxy the settings trust can.
    assert Client().get("/nope/", HTTP_X_REQUEST_ID="lb-7f3a.01")[HEADER] != "lb-7f3a.01"
    settings.TRUSTED_PROXIES = 1
    assert Client().get("/nope/", HTTP_X_REQUEST_ID="lb-7f3a.01")[HEADER] == "lb-7f3a.01"
    for forged in ("a\nfake line", "x" * 65, 'x" "level":"ERROR'):
        answered = Client().get("/nope/", HTTP_X_REQUEST_ID=forged)[HEADER]
        assert answered != forged and len(answered) == 32
    assert {line["request_id"] for line in json_lines} >= {"lb-7f3a.01"}


def test_secrets_in_addresses_never_reach_the_log(json_lines):
    Client().get("/calendar/s3cr3t-feed-key.ics")
    Client().get("/admin/reset/MQ/cq8-1f2a3b4c5d6e7f8a9b0c/")
    logged = json.dumps(json_lines)
    assert "s3cr3t-feed-key" not in logged and "cq8-1f2a3b4c5d6e7f8a9b0c" not in logged
    assert "/calendar/[secret].ics" in logged


def test_sentry_is_sent_no_person_and_no_secret():
    event = {
        "request": {
            "url": "https://osa.example.org/calendar/s3cr3t.ics",
            "method": "GET",
            "cookies": {"sessionid": "x"},
            "headers": {"Authorization": "Token abc"},
            "data": {"password": "pw"},
            "env": {"REMOTE_ADDR": "203.0.113.9"},
        },
        "user": {"username": "casey", "email": "casey@example.org"},
        "transaction": "/admin/reset/MQ/cq8-abc/",
    }
    assert scrub(event, {}) == {
        "request": {"url": "https://osa.example.org/calendar/[secret].ics", "method": "GET"},
        "transaction": "/admin/reset/MQ/[token]/",
    }


def test_production_logs_are_json_on_standard_error(tmp_path):
    result = python(
        tmp_path,
        "-c",
        "import django, logging; django.setup(); logging.getLogger('obligations').warning('hi')",
        **production(DJANGO_SETTINGS_MODULE="tracker.settings"),
    )
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert {k: line[k] for k in ("level", "logger", "message", "request_id")} == {
        "level": "WARNING",
        "logger": "obligations",
        "message": "hi",
        "request_id": "-",
    }


class Receiver(BaseHTTPRequestHandler):
    """Sentry's ingest endpoint, as far as a test needs: it keeps what is posted."""

    received: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        # The SDK sends gzip, or Brotli when the brotli package is installed (WeasyPrint's
        # fonttools brings it), as a real ingest endpoint accepts.
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        elif self.headers.get("Content-Encoding") == "br":
            body = brotli.decompress(body)
        Receiver.received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_errors_go_to_sentry_without_personal_data(tmp_path: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received.clear()
    try:
        result = python(
            tmp_path,
            "-c",
            "import django, sentry_sdk; django.setup(); "
            "options = sentry_sdk.get_client().options; "
            "print(options['send_default_pii'], options['include_local_variables'], "
            "options['max_breadcrumbs']); 1/0",
            DJANGO_SETTINGS_MODULE="tracker.settings",
            SENTRY_DSN=f"http://public@127.0.0.1:{server.server_port}/42",
            SENTRY_ENVIRONMENT="staging",
        )
    finally:
        server.shutdown()
    assert result.stdout.strip() == "False False 0"
    assert "ZeroDivisionError" in result.stderr
    [envelope] = [body for body in Receiver.received if b"ZeroDivisionError" in body]
    event = json.loads(envelope.splitlines()[2])
    assert event["environment"] == "staging"
    assert event["exception"]["values"][-1]["type"] == "ZeroDivisionError"


def test_a_mail_server_that_never_answers_cannot_hang_a_worker(settings):
    """EMAIL_TIMEOUT bounds every wait: a server that takes the connection and then says
    nothing fails the send in about that time (the outbox retries it later)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", silent.getsockname()[1]
    settings.EMAIL_TIMEOUT = 1
    started = time.perf_counter()
    try:
        with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected), match="timed out"):
            send_mail("s", "b", "from@example.org", ["to@example.org"])
    finally:
        silent.close()
    assert time.perf_counter() - started < 10
