"""The bench's own instruments: what it records of a request's SQL, how it replays that SQL
as the floor, and how it reports a machine whose speed changed during a run. (Its timings
are never asserted: they belong to `make bench`.)"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction

from tests import bench
from tests.factories import UserFactory


@pytest.mark.django_db(transaction=True)
def test_the_floor_replays_each_read_the_way_it_ran() -> None:
    """A read through `iterator()` streams from a server-side cursor on PostgreSQL; the floor
    streams it too, and replays reads made in a transaction inside one."""
    UserFactory.create_batch(3)
    with bench._recorded() as statements:
        list(User.objects.order_by("pk"))
        with transaction.atomic():
            list(User.objects.order_by("pk").iterator(chunk_size=2))
    statements = [s for s in statements if bench._is_read(s.sql)]  # as the bench keeps them
    assert [(s.streamed, s.atomic) for s in statements] == [
        (False, False),
        (connection.vendor == "postgresql", True),
    ]

    with bench._recorded() as replayed:
        times = bench._replay(statements)
    assert len(times) == 2
    replayed = [s for s in replayed if bench._is_read(s.sql)]
    assert [(s.sql, s.streamed, s.atomic) for s in replayed] == [
        (s.sql, s.streamed, s.atomic) for s in statements
    ]
    assert connection.get_autocommit()  # the replay's transaction is over


def _machine(**calibration: float) -> dict[str, Any]:
    return {
        "cpus": 2,
        "python": "3.11.7",
        "sqlite": "3.40.1",
        "when": "2026-12-04T18:00:00+00:00",
        "calibration_ms": calibration,
    }


def test_a_run_whose_machine_changed_speed_says_so() -> None:
    slowed = _machine(start=30.0, end=45.0)
    assert "calibration 30.0 ms at start, 45.0 ms at end" in bench.describe(slowed)
    first_line = bench.markdown({"machine": slowed, "runs": []}).splitlines()[0]
    assert "moved by 50% between the start and the end" in first_line

    sped_up = bench.drift(_machine(start=45.0, end=30.0))
    assert "moved by 33%" in sped_up
    assert bench.drift(_machine(start=30.0, end=33.0)) == ""  # within the machine's noise
    assert bench.drift(_machine(start=30.0)) == ""  # a run still going
    assert "at end" not in bench.describe(_machine(start=30.0))
    # A calibration that failed is said to be missing, and warns of nothing.
    failed = _machine(start=None, end=31.0)  # type: ignore[arg-type]
    assert "calibration - ms at start, 31.0 ms at end" in bench.describe(failed)
    assert bench.drift(failed) == ""


def test_a_small_tenants_page_that_grows_with_the_others_data_is_called_out() -> None:
    def run(measure: str, size: int, median: float, view: float = 2.0) -> dict[str, Any]:
        return {
            "database": "postgres",
            "measure": measure,
            "size": size,
            "median_ms": median,
            "floor_view_ms": view,
        }

    table = bench._tenant_table(
        [
            run("tenant_api_page", 1000, 8.0),
            run("tenant_api_page", 100_000, 57.0),
            run("tenant_dashboard", 1000, 30.0),
            run("tenant_dashboard", 100_000, 33.0),
            # Twice as slow, on a machine that ran the trivial view twice as slowly: flat.
            run("tenant_admin_changelist", 1000, 30.0),
            run("tenant_admin_changelist", 100_000, 60.0, view=4.0),
            run("api_page", 100_000, 20.0),  # the large organisation's: not in this table
        ],
        [1000, 100_000],
    )
    assert table[-3:] == [
        "| postgres | tenant_api_page | 8.0 | 57.0 | grows: 7.1x |",
        "| postgres | tenant_dashboard | 30.0 | 33.0 | flat |",
        "| postgres | tenant_admin_changelist | 30.0 | 60.0 | flat |",
    ]
    assert bench._tenant_table([run("api_page", 1000, 8.0)], [1000]) == []


def test_a_small_tenants_pages_are_held_to_the_large_ones_targets() -> None:
    for name in bench.PAGES:
        assert bench.verdicts({"measure": f"tenant_{name}"}) == bench.verdicts({"measure": name})
    slow = {"measure": "tenant_api_page", "p95_ms": 151.0, "ratio": 1.0}
    assert bench.verdicts(slow)[1] == ["p95 < 150 ms"]
