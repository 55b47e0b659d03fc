"""One helper for the rule that lists cost a constant number of queries."""

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext


def _shape(sql: str) -> str:
    """A query without its values, so that two runs' queries compare by what they do."""
    return re.sub(r"'[^']*'|\b\d+\b|\"s\d+_x\d+\"", "?", sql)[:200]


def assert_constant_queries(
    grow: Callable[[int], None], measure: Callable[[], object], sizes: tuple[int, int]
) -> int:
    """Grow the data to each size, run `measure`, and assert the query counts are equal.

    `grow(n)` adds rows until there are n; returns the (equal) count.
    """
    counts, captured = [], []
    for size in sizes:
        grow(size)
        measure()  # warm process-wide caches (content types), which a live server keeps
        with CaptureQueriesContext(connection) as ctx:
            measure()
        counts.append(len(ctx.captured_queries))
        captured.append([_shape(q["sql"]) for q in ctx.captured_queries])
    if counts[0] != counts[1]:
        extra = list((Counter(captured[1]) - Counter(captured[0])).elements()) or captured[1]
        shown = "\n  ".join(extra[:10])
        raise AssertionError(
            f"query count grows with the data: {counts[0]} queries at {sizes[0]} rows, "
            f"{counts[1]} at {sizes[1]}; queries only at {sizes[1]}:\n  {shown}"
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
