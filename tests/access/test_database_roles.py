"""The web and the workers log in to PostgreSQL as a role that owns no table (README,
"Database roles"): it reads and writes rows, and cannot switch off, drop or get round the
triggers that keep the record. tests.servers makes the README's two roles from
tracker/database-roles.sql and the suite logs in as the app's, so every test on PostgreSQL
(test_hardening's append-only trigger test among them) runs with exactly these grants."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dj_database_url
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from obligations.access.models import AccessAction, AccessLog
from obligations.access.signin import record_access
from obligations.register.states import CycleStatus, EventKind
from tests.conftest import OWNER_URL
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member
from tests.factories import meet as work_to_met

ROLES_SQL = Path(settings.BASE_DIR) / "tracker" / "database-roles.sql"
ROW_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
OTHER_PRIVILEGES = ("TRUNCATE", "REFERENCES", "TRIGGER")


def test_the_readme_gives_the_grants_the_tests_use():
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    assert ROLES_SQL.read_text() in readme


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_app_logs_in_as_a_role_with_row_privileges_only():
    def rows(sql: str) -> list[tuple]:  # type: ignore[type-arg]
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    (user,) = rows("SELECT current_user")[0]
    assert user == dj_database_url.parse(os.environ["DATABASE_URL"])["USER"], (
        "the suite logs in as DATABASE_URL's role, which tests.servers makes"
    )
    privileges = ", ".join(
        f"has_table_privilege(oid, '{p}')" for p in (*ROW_PRIVILEGES, *OTHER_PRIVILEGES)
    )
    tables = {
        name: tuple(held)
        for name, *held in rows(
            f"SELECT relname, {privileges} FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"
        )
    }
    assert {"obligations_event", "obligations_evidence", "auth_user"} <= set(tables)
    granted = (True,) * len(ROW_PRIVILEGES) + (False,) * len(OTHER_PRIVILEGES)
    assert {name: held for name, held in tables.items() if held != granted} == {}
    # (Functions in the select list: a WHERE clause's conditions may run in any order.)
    sequences = dict(
        rows(
            "SELECT relname, has_sequence_privilege(oid, 'USAGE') FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind = 'S'"
        )
    )
    assert sequences and all(sequences.values())
    owned = "pg_get_userbyid({}) = current_user"
    assert (
        rows(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            f"AND {owned.format('relowner')} UNION ALL SELECT proname FROM pg_proc "
            f"WHERE pronamespace = 'public'::regnamespace AND {owned.format('proowner')}"
        )
        == []
    )


# What the owner of the tables could do to the record, and the app's role cannot.
GETTING_ROUND = [
    "ALTER TABLE obligations_event DISABLE TRIGGER obligations_event_append_only",
    "ALTER TABLE obligations_evidence DISABLE TRIGGER ALL",
    "DROP TRIGGER obligations_event_append_only ON obligations_event",
    "DROP TRIGGER obligations_evidence_never_deleted ON obligations_evidence",
    "CREATE OR REPLACE FUNCTION obligations_refuse_rewrite() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "DROP FUNCTION obligations_keep_record() CASCADE",
    "TRUNCATE obligations_event",
    "TRUNCATE obligations_membership CASCADE",
    "DROP TABLE obligations_accesslog",
    "ALTER TABLE obligations_event OWNER TO CURRENT_USER",
    "CREATE TRIGGER bypass BEFORE UPDATE ON obligations_reminder FOR EACH ROW "
    "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    "CREATE TABLE obligations_shadow (id integer)",
    "SET session_replication_role = replica",
    "DROP FUNCTION obligations_accesslog_keep() CASCADE",
    "CREATE OR REPLACE FUNCTION osa_purge_access_log(before timestamptz) RETURNS bigint "
    "LANGUAGE sql AS $$ SELECT 0::bigint $$",
    "ALTER FUNCTION osa_purge_access_log(timestamptz) SECURITY INVOKER",
]


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("sql", GETTING_ROUND, ids=lambda sql: " ".join(sql.split()[:4]))
def test_the_app_role_cannot_get_round_the_triggers(sql):
    with (
        pytest.raises(DatabaseError, match=r"must be owner|permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgname ~ %s AND tgenabled <> 'O'",
            [r"_(append_only|never_deleted|keeps_record)$"],
        )
        assert cursor.fetchall() == []


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_app_role_does_the_apps_work(catalogue):
    """Its grants are enough: an obligation worked to met writes cycles, evidence, events,
    the reminder outbox and field history."""
    org = OrganisationFactory()
    service = applied_service(provider=ProviderFactory(organisation=org))
    doer, reviewer = member(org, username="doer"), member(org, username="reviewer")
    cycle = work_to_met(service.obligations.get(duty__code="U2U-RECORDS"), doer, reviewer)
    assert cycle.status == CycleStatus.MET
    assert {EventKind.EVIDENCE_ADDED, EventKind.STATUS} <= set(
        cycle.events.values_list("kind", flat=True)
    )
    assert cycle.evidence.get().history.count() == 1
    assert cycle.reminders.filter(recipient=reviewer).exists()
    record_access(user=reviewer, action=AccessAction.SIGN_IN, request=None)


# The access log's retention (migrations 0033 and 0035): old rows go through
# osa_purge_access_log only, and it keeps what the installation's retention keeps.
@pytest.fixture
def access_rows(db):  # type: ignore[no-untyped-def]
    # The database's clock, which the function reads: the tests' Python clock is fixed.
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (now,) = cursor.fetchone()
    for days, name in ((800, "old"), (400, "kept"), (29, "recent"), (0, "today")):
        AccessLog.objects.create(
            at=now - dt.timedelta(days=days), action=AccessAction.SIGN_IN, username=name
        )


def purge(sql: str, *params: object) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


@contextlib.contextmanager
def retention(days: int) -> Iterator[str]:
    """The retention set as the migrate step sets it: by the tables' owner, through the
    command (in its own connection, so the test's transaction is left alone); put back to
    the setting's after."""
    owner = dj_database_url.parse(OWNER_URL)
    name = connection.settings_dict["NAME"]
    url = f"postgres://{owner['USER']}@{owner['HOST']}:{owner['PORT']}/{name}"

    def apply(value: int) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", "apply_access_log_retention"],
            cwd=settings.BASE_DIR,
            env={**os.environ, "DATABASE_URL": url, "ACCESS_LOG_RETENTION_DAYS": str(value)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    try:
        yield apply(days)
    finally:
        apply(settings.ACCESS_LOG_RETENTION_DAYS)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM obligations_accesslog",
        "DELETE FROM obligations_accesslog WHERE at < now() - interval '300 days'",
        # The limit the trigger reads, set by hand: the DELETE still runs as the app's role.
        "SELECT set_config('osa.purge_access_log_before', '3000-01-01', true); "
        "DELETE FROM obligations_accesslog",
    ],
    ids=["all", "old", "with the purge limit set"],
)
def test_the_app_role_cannot_delete_from_the_access_log_itself(access_rows, sql):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AccessLog.objects.count() == 4


@pytest.mark.postgres
@pytest.mark.parametrize(
    "before",
    [
        "now()",
        "now() - interval '29 days'",
        # Older than the function's own floor, not older than the installation's retention.
        "now() - interval '31 days'",
        "now() - interval '729 days'",
        "now() + interval '9 years'",
    ],
)
def test_the_purge_function_keeps_what_the_retention_keeps(access_rows, before):
    assert settings.ACCESS_LOG_RETENTION_DAYS == 730
    with pytest.raises(DatabaseError, match="the access log keeps the last 730 days"):
        purge(f"SELECT osa_purge_access_log({before})")
    assert AccessLog.objects.count() == 4


@pytest.mark.postgres
def test_the_purge_function_removes_old_rows_for_the_app_role(access_rows):
    assert purge("SELECT osa_purge_access_log(now() - interval '730 days')") == 1
    assert set(AccessLog.objects.values_list("username", flat=True)) == {
        "kept",
        "recent",
        "today",
    }
    # The limit it set for the trigger is gone with it: a DELETE after it is refused too.
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT osa_purge_access_log(now() - interval '730 days')")
        cursor.execute("DELETE FROM obligations_accesslog")
    assert AccessLog.objects.count() == 3


@pytest.mark.postgres
def test_only_the_owner_sets_the_retention_and_zero_keeps_everything(transactional_db, access_rows):
    """Committing, as the nightly task does: a session sees a replaced function at its next
    transaction (inside one that already holds the table's lock it may not, which no task
    does)."""
    with (
        pytest.raises(DatabaseError, match=r"must be owner|permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "CREATE OR REPLACE FUNCTION osa_access_log_retention() RETURNS interval "
            "LANGUAGE sql AS $$ SELECT interval '1 day' $$"
        )
    with retention(0) as said:
        assert said == "Access log kept for ever."
        with pytest.raises(DatabaseError, match="kept for ever here"):
            purge("SELECT osa_purge_access_log(now() - interval '5000 days')")
    with retention(300):
        assert purge("SELECT osa_purge_access_log(now() - interval '300 days')") == 2
    assert set(AccessLog.objects.values_list("username", flat=True)) == {"recent", "today"}
