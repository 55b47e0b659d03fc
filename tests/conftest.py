import contextlib
import os
import sqlite3
from collections.abc import Iterator

import dj_database_url
import pytest
import time_machine
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.test import TransactionTestCase, override_settings
from pytest_django import DjangoDbBlocker
from pytest_django.fixtures import validate_django_db

from obligations.access.users import get_system_user
from obligations.catalogue.loading import load_catalogue
from obligations.catalogue.models import CatalogueVersion
from obligations.catalogue.rules import Catalogue, read_catalogue
from obligations.register.models import Obligation
from tests.clock import LONDON, NOW, TODAY
from tests.world import make_world

__all__ = ["LONDON", "NOW", "TODAY"]  # tests import the clock's names from here

# The `browser` fixture (Debian's chromium through Playwright), for every test that asks.
pytest_plugins = ["tests.browser"]


@pytest.fixture(autouse=True)
def clock() -> Iterator[object]:
    """Every test runs on a fixed clock: 24 Nov 2026, 10:00 in London."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing() -> Iterator[None]:
    """Every user the factories make has a password, and PBKDF2's million iterations cost
    about half a second each (a world's five people, 2 s): the tests hash with MD5, as
    Django's testing documentation advises. Production keeps its hashers."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


def uses_database(request: pytest.FixtureRequest) -> bool:
    """Whether the test uses the database; if so, its database is set up first (so that it
    is still there when a fixture calling this looks at it after the test)."""
    if "_django_db_helper" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("_django_db_helper")
        return True
    return False


@pytest.fixture(autouse=True)
def register_in_step(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that used the database, each obligation's copy of its current
    cycle's status and due date still agrees with the cycle: whatever path a test took, the
    services kept the two in step."""
    uses_db = uses_database(request)
    yield
    if uses_db:
        rows = Obligation.objects.filter(current_cycle__isnull=False).values_list(
            "pk", "status", "due_date", "current_cycle__status", "current_cycle__due_date"
        )
        assert [row for row in rows if row[1:3] != row[3:5]] == []


@pytest.fixture(scope="session")
def catalogue_file() -> Catalogue:
    return read_catalogue(settings.CATALOGUE_PATH)


# --- The catalogue, loaded once a run -------------------------------------------------------
# Loading the OSA catalogue writes a few hundred rows; loading it for each of the ~600 tests
# that ask for it cost more than anything else in their set-up. It is loaded once, committed,
# just after the test database is made (django_db_setup below), so that each test's
# transaction starts with it: what a test changes (a new version, a retired duty) is rolled
# back with the rest. A transactional test commits, and its database is emptied after it
# (Django's flush): the catalogue is loaded again straight after. A test that does not ask for
# the catalogue finds none, as before: the rows the load added are deleted inside its
# transaction (or, for a transactional test, before it; its flush and the reload follow).

# The rows the last load added, table by table (they are deleted for a test without it).
_catalogue_rows: dict[tuple[str, str], list[object]] = {}


def _row_keys() -> dict[tuple[str, str], set[object]]:
    keys: dict[tuple[str, str], set[object]] = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed:
            continue
        table, pk = model._meta.db_table, model._meta.pk.column
        keys[(table, pk)] = set(model._base_manager.values_list("pk", flat=True))
    return keys


def load_catalogue_for_the_run(catalogue: Catalogue) -> None:
    """Load the catalogue, committed, on the tests' clock, and note the rows it added."""
    before = _row_keys()
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        load_catalogue(actor=get_system_user(), catalogue=catalogue)
    _catalogue_rows.clear()
    for key, rows in _row_keys().items():
        if added := list(rows - before[key]):
            _catalogue_rows[key] = added


def delete_the_catalogue() -> None:
    """Delete the rows the load added, in one transaction (foreign keys are checked at its
    end, so the order does not matter)."""
    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        for (table, pk), rows in _catalogue_rows.items():
            for start in range(0, len(rows), 500):
                chunk = rows[start : start + 500]
                cursor.execute(
                    f"DELETE FROM {quote(table)} WHERE {quote(pk)} IN "
                    f"({', '.join(['%s'] * len(chunk))})",
                    chunk,
                )


@pytest.fixture
def catalogue(db, catalogue_file):  # type: ignore[no-untyped-def]
    """The OSA catalogue in the test database (loaded once a run: see above)."""
    if not CatalogueVersion.objects.filter(sha256=catalogue_file.sha256).exists():
        # Asked for by name during a test (getfixturevalue), after it was taken away.
        load_catalogue(actor=get_system_user(), catalogue=catalogue_file)
    return catalogue_file


@pytest.fixture(autouse=True)
def no_catalogue_unless_asked(request: pytest.FixtureRequest) -> None:
    """A test using the database without asking for the catalogue finds none."""
    if "catalogue" not in request.fixturenames and uses_database(request):
        delete_the_catalogue()


@pytest.fixture(autouse=True)
def evidence_storage(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Evidence files go to a per-test directory, never to var/."""
    root = tmp_path / "evidence"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": root, "base_url": None},
        },
    }
    return root


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    """Tests marked `postgres` need PostgreSQL's locking; `make test` runs them there."""
    if "postgres" in settings.DATABASES["default"]["ENGINE"]:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (make test runs it on a throwaway server)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def use_broker(url: str, options: dict[str, object]) -> None:
    """Point this process's Celery app at another broker (its pools are rebuilt on next use)."""
    from kombu import pools

    from tracker.celery import app

    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    # kombu keeps producer pools by broker URL: a closed one must not serve the next test.
    pools.reset()
    app.amqp._producer_pool = None
    app.conf.broker_url = url
    app.conf.broker_transport_options = options


def filesystem_broker_options(root) -> dict[str, object]:  # type: ignore[no-untyped-def]
    for folder in ("queue", "control"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(root / "queue"),
        "data_folder_out": str(root / "queue"),
        "control_folder": str(root / "control"),
        "store_processed": False,
    }


@pytest.fixture(autouse=True, scope="session")
def test_broker(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Tasks the tests enqueue go to a throwaway file-system broker, never to var/broker."""
    root = tmp_path_factory.mktemp("broker")
    use_broker("filesystem://", filesystem_broker_options(root))
    return root


@pytest.fixture
def switch_broker(test_broker):  # type: ignore[no-untyped-def]
    """For a test that points the app at another broker: put the test broker back after."""
    yield use_broker
    use_broker("filesystem://", filesystem_broker_options(test_broker))


# --- Database roles -------------------------------------------------------------------------
# On the PostgreSQL that tests.servers starts, the suite runs as production does (README,
# "Database roles"): the owner creates, migrates and drops the test database, and the tests
# (their threads, workers and commands too) log in as the app's role, which owns no table.
# Emptying the database after a transactional test is a TRUNCATE (it fires no row trigger),
# which the app's role may not do: the owner does that as well.
OWNER_URL = (
    os.environ.get("DATABASE_OWNER_URL", "")
    if "postgres" in settings.DATABASES["default"]["ENGINE"]
    else ""
)


def _log_in_as(url: str) -> None:
    """Connections from now on log in as the role of `url` (the open one is closed)."""
    role = dj_database_url.parse(url)
    connection.close()
    connection.settings_dict["USER"], connection.settings_dict["PASSWORD"] = (
        role["USER"],
        role["PASSWORD"],
    )


@contextlib.contextmanager
def as_table_owner() -> Iterator[None]:
    """Logged in as the tables' owner for a while (outside any transaction)."""
    if not OWNER_URL:
        yield
        return
    _log_in_as(OWNER_URL)
    try:
        yield
    finally:
        _log_in_as(os.environ["DATABASE_URL"])


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """The owner creates and migrates the test database; SQLite's, in memory (below)."""
    if OWNER_URL:
        _log_in_as(OWNER_URL)
    if connection.vendor == "sqlite":
        _sqlite_file.append(connection.settings_dict["TEST"]["NAME"])
        connection.settings_dict["TEST"]["NAME"] = ":memory:"


# --- SQLite: in memory, then in a file once a test commits -----------------------------------
# SQLite's test database is made in memory. A Celery worker, a command or a live server's
# threads started by a test cannot see a database in this process's memory; only a test that
# commits can share its data with them (transaction=True, transactional_db, live_server), and
# pytest-django runs those after all the others. The first of them copies the database, as it
# stands, to the file tracker/settings.py names, and every test from then on uses the file.
_sqlite_file: list[str] = []


def commits(item: pytest.Item) -> bool:
    """Whether the test's writes are committed, as pytest-django decides it."""
    fixtures = set(getattr(item, "fixturenames", ()))
    if {"transactional_db", "live_server", "django_db_reset_sequences"} & fixtures:
        return True
    marker = item.get_closest_marker("django_db")
    if marker is None:
        return False
    transaction, reset_sequences, *_ = validate_django_db(marker)
    return bool(transaction or reset_sequences)


@pytest.fixture(scope="session")
def database_in_a_file(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> None:
    """From now on, the SQLite test database is a file (SQLite's backup copies it)."""
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        return
    with django_db_blocker.unblock():
        connection.ensure_connection()
        memory = connection.connection
        with contextlib.closing(sqlite3.connect(_sqlite_file[0])) as target:
            memory.backup(target)
        connection.settings_dict["NAME"] = _sqlite_file[0]
        connection.close()  # now it is not in memory, this closes it (and frees the memory)
    # At the end, pytest-django destroys the test database by this name: the file.


@pytest.fixture(scope="session")
def live_server(database_in_a_file: None, live_server):  # type: ignore[no-untyped-def]
    """A live server's threads open the database in the file, each on its own connection."""
    return live_server


@pytest.fixture(autouse=True)
def database_in_a_file_for_a_test_that_commits(request: pytest.FixtureRequest) -> None:
    if commits(request.node):
        request.getfixturevalue("database_in_a_file")


def no_autovacuum() -> None:
    """The owner turns autovacuum off on every table of the test database.

    Each test's rows are never committed, so autovacuum has nothing to do here but harm: one
    that runs while a test holds thousands of uncommitted rows records the table as N pages
    of 0 rows, and from then on the planner estimates one row there whatever a test inserts.
    The next test to query 2,000 obligations got nested loops over them: the sweep's query
    took minutes instead of milliseconds (a whole run hung in it). Never vacuumed, a table
    is estimated from its actual size, as in each test's own transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            DO $$
            DECLARE t record;
            BEGIN
                FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
                    EXECUTE format(
                        'ALTER TABLE %I SET (autovacuum_enabled = off)', t.tablename
                    );
                END LOOP;
            END
            $$
            """
        )


@pytest.fixture(scope="session")
def django_db_setup(
    django_db_setup: None, django_db_blocker: DjangoDbBlocker, catalogue_file: Catalogue
) -> Iterator[None]:
    """Then the tests log in as the app's role, which loads the catalogue for the whole run
    (and again after each flush); the owner flushes (and turns autovacuum off, again after
    the migration tests) and, at the end, drops."""
    with django_db_blocker.unblock():
        if OWNER_URL:
            no_autovacuum()
            _log_in_as(os.environ["DATABASE_URL"])
        load_catalogue_for_the_run(catalogue_file)
    flush = TransactionTestCase._fixture_teardown

    def flush_and_reload(self: TransactionTestCase) -> None:
        with as_table_owner():
            flush(self)
            if OWNER_URL:
                no_autovacuum()
        load_catalogue_for_the_run(catalogue_file)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TransactionTestCase, "_fixture_teardown", flush_and_reload)
        yield
    if OWNER_URL:
        _log_in_as(OWNER_URL)


@pytest.fixture
def table_owner() -> Iterator[None]:
    """A transactional test doing the owner's work (migrating, ANALYZE) logs in as it."""
    with as_table_owner():
        yield


@pytest.fixture
def world(catalogue):  # type: ignore[no-untyped-def]
    """An organisation, its people in each role and a service (tests/world.py)."""
    return make_world()
