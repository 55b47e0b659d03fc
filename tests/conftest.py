import contextlib
import os
from collections.abc import Iterator

import dj_database_url
import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import TransactionTestCase, override_settings

from obligations import services
from obligations.catalogue import Catalogue, read_catalogue
from obligations.models import Obligation
from tests.clock import LONDON, NOW, TODAY
from tests.world import make_world

__all__ = ["LONDON", "NOW", "TODAY"]  # tests import the clock's names from here


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


@pytest.fixture(autouse=True)
def register_in_step(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that used the database, each obligation's copy of its current
    cycle's status and due date still agrees with the cycle: whatever path a test took, the
    services kept the two in step."""
    uses_db = "_django_db_helper" in request.fixturenames
    if uses_db or request.node.get_closest_marker("django_db"):
        # Set up the database first, so that it is still there when this checks it.
        request.getfixturevalue("_django_db_helper")
        uses_db = True
    yield
    if uses_db:
        rows = Obligation.objects.filter(current_cycle__isnull=False).values_list(
            "pk", "status", "due_date", "current_cycle__status", "current_cycle__due_date"
        )
        assert [row for row in rows if row[1:3] != row[3:5]] == []


@pytest.fixture(scope="session")
def catalogue_file() -> Catalogue:
    return read_catalogue(settings.CATALOGUE_PATH)


@pytest.fixture
def catalogue(db, catalogue_file):  # type: ignore[no-untyped-def]
    """The OSA catalogue loaded into the test database."""
    services.load_catalogue(actor=services.get_system_user(), catalogue=catalogue_file)
    return catalogue_file


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
    """The owner creates and migrates the test database."""
    if OWNER_URL:
        _log_in_as(OWNER_URL)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:
    """Then the tests log in as the app's role; the owner flushes and, at the end, drops."""
    if not OWNER_URL:
        yield
        return
    _log_in_as(os.environ["DATABASE_URL"])
    flush = TransactionTestCase._fixture_teardown

    def flush_as_owner(self: TransactionTestCase) -> None:
        with as_table_owner():
            flush(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TransactionTestCase, "_fixture_teardown", flush_as_owner)
        yield
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
