"""Helpers the tests share: constant query counts, a page's form as a browser sends it, API and
admin clients signed in as someone, and small builders several domains' tests use."""

import re
from collections import Counter
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from obligations.access.tokens import create_api_token


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


class _FormReader(HTMLParser):
    """The fields of one <form> as a browser submits it without pressing a named button:
    checked boxes only, each select's selected options (a single select with none selected
    sends its first option, as browsers do), textareas' text, no disabled fields."""

    def __init__(self, form_id: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.found = False
        self.pairs: list[tuple[str, str]] = []
        self._select: tuple[str, bool, list[tuple[str, bool]]] | None = None
        self._option: list[Any] | None = None
        self._textarea: list[Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form" and not self.found:
            if self.form_id is None or a.get("id") == self.form_id:
                self.inside = self.found = True
            return
        if not self.inside or "disabled" in a:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.pairs.append((name, a.get("value", "on")))
            elif kind not in ("submit", "button", "image", "reset", "file"):
                self.pairs.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select = (name, "multiple" in a, [])
        elif tag == "option" and self._select is not None:
            self._option = [a.get("value"), "selected" in a, ""]
        elif tag == "textarea" and name:
            self._textarea = [name, ""]

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option[2] += data
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "option" and self._option is not None and self._select is not None:
            value, selected, text = self._option
            self._select[2].append((text.strip() if value is None else value, selected))
            self._option = None
        elif tag == "select" and self._select is not None:
            name, multiple, options = self._select
            chosen = [value for value, selected in options if selected]
            if not chosen and not multiple and options:
                chosen = [options[0][0]]
            self.pairs += [(name, value) for value in (chosen if multiple else chosen[:1])]
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            self.pairs.append((name, text[1:] if text.startswith("\n") else text))
            self._textarea = None


def form_data(response: Any, form_id: str | None = None) -> dict[str, Any]:
    """What a browser would POST from the page's form (the first, or the one with `form_id`),
    unchanged: a field shown wrongly (a select not showing the stored value) is sent wrongly,
    as a person's browser would send it. A name sent more than once maps to a list."""
    reader = _FormReader(form_id)
    reader.feed(response.content.decode())
    assert reader.found, f"no form {form_id or ''} on the page"
    sent: dict[str, list[str]] = {}
    for name, value in reader.pairs:
        sent.setdefault(name, []).append(value)
    return {name: values[0] if len(values) == 1 else values for name, values in sent.items()}


def admin_form_data(response: Any) -> dict[str, Any]:
    """The POST data an admin change or add page would send as rendered: its form, every
    inline's management form and rows, so a test changes only what it means to."""
    opts = response.context["opts"]
    return form_data(response, f"{opts.model_name}_form")


def client_for(user, *, read_only=False):  # type: ignore[no-untyped-def]
    _, key = create_api_token(actor=user, name="t", read_only=read_only)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def team_obligation(team, code="U2U-RECORDS"):  # type: ignore[no-untyped-def]
    return team["service"].obligations.get(duty__code=code)


def signed_in_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


OPERATOR_APPS = {"auth.group", "django_celery_beat"}


def private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def revenue_row(amount: str) -> dict[str, str]:
    """One complete accounting period for 2024, as the provider page's inline posts it."""
    return {
        "revenue_periods-TOTAL_FORMS": "1",
        "revenue_periods-0-kind": "accounting",
        "revenue_periods-0-start": "2024-01-01",
        "revenue_periods-0-end": "2024-12-31",
        "revenue_periods-0-amount_gbp": amount,
        "revenue_periods-0-basis": "audited",
        "revenue_periods-0-complete": "on",
    }
