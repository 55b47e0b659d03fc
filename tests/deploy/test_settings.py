"""Production settings: what they refuse, that a malformed variable is one clear line, that
they write nothing to disk, and that the README's table names every variable they read."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)
POSTGRES = "postgres://osa@db.example/osa"
REDIS = "redis://cache.example:6379/0"


def python(tmp_path: Path, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """Python run in the project with its own settings and var directory; `env` sets (or,
    with None, removes) environment variables."""
    environment = {**os.environ, "TRACKER_VAR_DIR": str(tmp_path)}
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def production(**env: str | None) -> dict[str, str | None]:
    """A production environment that starts (its servers need not exist for `check`),
    changed by `env`."""
    return {
        "TRACKER_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "example.org",
        "SITE_URL": "https://example.org",
        "DATABASE_URL": POSTGRES,
        "REDIS_URL": REDIS,
        "DEBUG": "0",
        **env,
    }


def refusal(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines a refused start printed: nothing else, and no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = python(
        tmp_path, *("manage.py", "check", "--deploy", "--fail-level", "WARNING"), **production()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_sqlite_in_one_line_unless_allowed(tmp_path):
    lines = refusal(python(tmp_path, "manage.py", "check", **production(DATABASE_URL=None)))
    assert lines == [
        "Configuration error: TRACKER_ENV=production needs DATABASE_URL to name a PostgreSQL "
        "database, not SQLite (set ALLOW_SQLITE_IN_PRODUCTION=1 to run on SQLite anyway)"
    ]
    allowed = production(DATABASE_URL=None, ALLOW_SQLITE_IN_PRODUCTION="1")
    assert python(tmp_path, "manage.py", "check", **allowed).returncode == 0


def test_production_refuses_the_file_system_broker_unless_allowed(tmp_path):
    lines = refusal(python(tmp_path, "manage.py", "check", **production(REDIS_URL=None)))
    assert lines == [
        "Configuration error: TRACKER_ENV=production needs REDIS_URL for Celery, not the "
        "file-system broker (set ALLOW_FILESYSTEM_BROKER_IN_PRODUCTION=1 to use it anyway)"
    ]
    allowed = production(REDIS_URL=None, ALLOW_FILESYSTEM_BROKER_IN_PRODUCTION="yes")
    assert python(tmp_path, "manage.py", "check", **allowed).returncode == 0


def test_production_refuses_debug_a_missing_key_and_no_hosts(tmp_path):
    assert refusal(python(tmp_path, "manage.py", "check", **production(DEBUG="1"))) == [
        "Configuration error: DEBUG must be off when TRACKER_ENV=production"
    ]
    assert refusal(python(tmp_path, "manage.py", "check", **production(SECRET_KEY=None))) == [
        "Configuration error: SECRET_KEY must be set when TRACKER_ENV=production"
    ]
    assert refusal(python(tmp_path, "manage.py", "check", **production(ALLOWED_HOSTS=""))) == [
        "Configuration error: ALLOWED_HOSTS must name the site's host names when "
        "TRACKER_ENV=production"
    ]
    assert refusal(python(tmp_path, "manage.py", "check", **production(SITE_URL=None))) == [
        "Configuration error: SITE_URL must be set when TRACKER_ENV=production "
        "(e.g. https://osa.example.org)"
    ]


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        ("EMAIL_PORT", "abc", "EMAIL_PORT must be a whole number from 1 to 65535, not 'abc'"),
        ("EMAIL_TIMEOUT", "0", "EMAIL_TIMEOUT must be a whole number from 1 to 300, not '0'"),
        ("EMAIL_USE_TLS", "maybe", "EMAIL_USE_TLS must be true or false (1/0, yes/no, on/off)"),
        ("TRACKER_ENV", "prod", "TRACKER_ENV must be one of development, production, not 'prod'"),
        ("DATABASE_URL", "mysq://x", "DATABASE_URL is not a database URL this tracker knows"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must begin redis://, rediss:// or unix://"),
        ("SIGN_IN_LOCKOUT_MINUTES", "1e27", "SIGN_IN_LOCKOUT_MINUTES must be a whole number"),
        ("SENTRY_TRACES_SAMPLE_RATE", "NaN", "SENTRY_TRACES_SAMPLE_RATE must be a number"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("SITE_URL", "https://a\r\nb", "SITE_URL must be one line without control characters"),
        ("SITE_URL", "osa.example.org", "SITE_URL must be the site's address, http(s)://host"),
        ("REMINDER_SWEEP_AT", "7am", "REMINDER_SWEEP_AT must be a time of day as HH:MM"),
    ],
)
def test_a_malformed_variable_is_one_line_naming_it(tmp_path, name, value, line):
    lines = refusal(python(tmp_path, "manage.py", "check", **{name: value}))
    assert len(lines) == 1 and lines[0].startswith(f"Configuration error: {line}"), lines


def test_every_malformed_variable_is_reported_at_once(tmp_path):
    lines = refusal(
        python(tmp_path, "manage.py", "check", EMAIL_PORT="abc", TRUSTED_PROXIES="-1", DEBUG="x")
    )
    assert [line.split()[2] for line in lines] == ["DEBUG", "TRUSTED_PROXIES", "EMAIL_PORT"]


def test_celery_and_gunicorn_refuse_the_same_way(tmp_path):
    for command in (
        ("-m", "celery", "-A", "tracker", "inspect", "ping"),
        ("-m", "gunicorn", "-c", "python:tracker.gunicorn", "--check-config"),
    ):
        lines = refusal(python(tmp_path, *command, EMAIL_PORT="abc"))
        assert lines[-1] == (
            "Configuration error: EMAIL_PORT must be a whole number from 1 to 65535, not 'abc'"
        ), command
    lines = refusal(
        python(
            tmp_path,
            "-m",
            "gunicorn",
            "-c",
            "python:tracker.gunicorn",
            "--check-config",
            WEB_WORKERS="lots",
        )
    )
    assert lines[-1].startswith("Configuration error: WEB_WORKERS must be a whole number")


def test_the_settings_write_nothing_to_disk(tmp_path):
    """A container's file system may be read-only: loading the settings and every app, and
    checking the project, makes no folder (production uses no local folder at all)."""
    var = tmp_path / "not-there"
    environment = production(TRACKER_VAR_DIR=str(var), STATIC_ROOT=str(tmp_path / "static"))
    result = python(tmp_path, "manage.py", "check", "--deploy", **environment)
    assert result.returncode == 0, result.stderr
    assert not var.exists() and not (tmp_path / "static").exists()


def test_postgres_sessions_turn_jit_off_unless_told(tmp_path):
    options = (
        "from django.conf import settings; print(settings.DATABASES['default'].get('OPTIONS'))"
    )
    env = {"DJANGO_SETTINGS_MODULE": "tracker.settings", "DATABASE_URL": POSTGRES}
    off = python(tmp_path, "-c", options, **env)
    assert off.stdout.strip() == "{'options': '-c jit=off'}", off.stderr
    server = python(tmp_path, "-c", options, **env, DATABASE_JIT="true")
    assert server.stdout.strip() == "None", server.stderr
    refused = refusal(python(tmp_path, "-c", options, **env, DATABASE_JIT="x"))
    assert refused[0].startswith("Configuration error: DATABASE_JIT must be true or false")


@pytest.mark.postgres
def test_the_postgres_session_runs_without_jit(db):
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)


def test_passwords_are_validated():
    validators = {v["NAME"].rsplit(".", 1)[1] for v in settings.AUTH_PASSWORD_VALIDATORS}
    assert {"MinimumLengthValidator", "CommonPasswordValidator"} <= validators


# --- One table of every variable -----------------------------------------------------------

READ = re.compile(r"""env\.\w+\(\s*(?:f?["'])([A-Z][A-Z0-9_]+)["']""")
SHELL = re.compile(r"\$\{([A-Z][A-Z0-9_]+)")


def variables_read() -> set[str]:
    """Every variable the settings, gunicorn's configuration and the entry point read."""
    names: set[str] = set()
    for path in sorted((ROOT / "tracker").glob("*.py")):
        source = path.read_text()
        names |= set(READ.findall(source))
        assert "os.environ.get(" not in source or path.name in {
            "celery.py",
            "asgi.py",
            "wsgi.py",
        }, f"{path.name} reads the environment around tracker.env"
    names |= set(SHELL.findall((ROOT / "bin" / "tracker").read_text()))
    # boto3 reads the bucket's credentials itself; the README lists them beside the bucket's.
    return names | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def variables_documented() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Environment variables") :]
    table = section[section.index("| variable") :]
    table = table[: table.index("\n\n")]
    return {
        name
        for row in table.splitlines()[2:]
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    }


def test_the_readme_table_names_every_variable_read_and_no_other():
    read, documented = variables_read(), variables_documented()
    assert read - documented == set(), "read but not in the README's table"
    assert documented - read == set(), "in the README's table but never read"
