"""One helper for the rule that lists cost a constant number of queries."""

from collections.abc import Callable
from typing import Any

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


def admin_form_data(response: Any) -> dict[str, Any]:
    """The POST data an admin change form would send as rendered: the form, every inline's
    management form and existing rows, so a test changes only what it means to."""
    data: dict[str, Any] = {}

    def add(form: Any) -> None:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.initial_forms:
            add(form)
    return data
