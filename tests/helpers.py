"""One helper for the rule that lists cost a constant number of queries."""

from collections.abc import Callable

from django.db import connection
from django.test.utils import CaptureQueriesContext


def assert_constant_queries(
    grow: Callable[[int], None], measure: Callable[[], object], sizes: tuple[int, int]
) -> int:
    """Grow the data to each size, run `measure`, and assert the query counts are equal.

    `grow(n)` adds rows until there are n; returns the (equal) count.
    """
    counts = []
    for size in sizes:
        grow(size)
        measure()  # warm process-wide caches (content types), which a live server keeps
        with CaptureQueriesContext(connection) as ctx:
            measure()
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], (
        f"query count grows with the data: {counts[0]} queries at {sizes[0]} rows, "
        f"{counts[1]} at {sizes[1]}"
    )
    return counts[0]
