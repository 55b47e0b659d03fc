"""The bench's own instruments: what it records of a request's SQL, and how it replays that
SQL as the floor. (Its timings are never asserted: they belong to `make bench`.)"""

from __future__ import annotations

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
