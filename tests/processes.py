"""Real processes for integration tests: a Celery worker, or a management command, running
against the test database (so tests using them need transactional_db, to commit)."""

from __future__ import annotations

import contextlib
import email
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.lifecycle import stop


def database_url() -> str:
    """The URL of the database this test process is using (the test database)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def environment(var_dir: Path, **extra: str) -> dict[str, str]:
    """A child's environment: the test database, its own var/ (mail files), no DEBUG."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DEBUG")}
    env.update(
        DATABASE_URL=database_url(),
        TRACKER_VAR_DIR=str(var_dir),
        DJANGO_SETTINGS_MODULE="tracker.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def running(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A process of the project, its output in `log`; stopped as a supervisor stops it
    (SIGTERM, then SIGKILL after 30 s) when the block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            stop(process, timeout=30)


def celery_worker(
    env: dict[str, str], log: Path, app: str = "tracker"
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """A worker process, as `make run` starts one; stopped (warm shutdown) afterwards."""
    return running(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        env,
        log,
    )


def wait_for(condition: Callable[[], bool], what: str, log: Path | None = None) -> None:
    """Poll until `condition()` holds (60 s at most); the worker's log explains a failure.

    Counts sleeps rather than reading a clock: the tests' clock is frozen.
    """
    for _ in range(600):
        if condition():
            return
        time.sleep(0.1)
    detail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{detail}")


def mailed_items(var_dir: Path) -> list[tuple[str, str]]:
    """(recipient, reminder line) for every item of every e-mail the file backend wrote under
    var_dir (it separates messages by a line of 79 dashes)."""
    mail_dir = var_dir / "mail"
    if not mail_dir.exists():
        return []
    found = []
    for path in sorted(mail_dir.iterdir()):
        for raw in path.read_text(errors="replace").split("\n" + "-" * 79 + "\n"):
            if not raw.strip():
                continue
            message = email.message_from_string(raw)
            for part in message.walk():
                if part.get_content_type() == "text/plain":
                    body = part.get_payload(decode=True).decode()
                    found += [
                        (message["To"], line[2:])
                        for line in body.splitlines()
                        if line.startswith("- ")
                    ]
    return found
