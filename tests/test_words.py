"""What people read is words: every admin list, change page and history page of the register,
and the dashboard, on the demo data, shows no "None", "True" or "False" and no ISO date,
outside form fields and code. Where raw values are meant, the allow-list says why."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse
from simple_history.models import DeletedObject, ModelChange

from obligations.adminkit import WordsContextHelper
from obligations.notices.models import OfcomNotice
from obligations.register.models import Obligation
from tests.helpers import signed_in_client

# Not read as prose: form controls (their values are inputs), code and scripts.
SKIPPED = {"script", "style", "select", "textarea", "svg", "pre", "code"}
RAW = re.compile(r"\b(?:None|True|False)\b|\b\d{4}-\d{2}-\d{2}\b")
# (page, why the raw value is meant, the text it may appear in)
ALLOWED = (
    ("change duty", "the catalogue's rule, as the catalogue file states it", re.compile(r"^\{")),
    (
        "change catalogueversion",
        "the catalogue file's own JSON, as loaded",
        re.compile(r"^[\[{]"),
    ),
    (
        "any",
        "a catalogue note quoting the day its source was checked (the catalogue's own words)",
        re.compile(r"checked (?:on )?\d{4}-\d{2}-\d{2}", re.IGNORECASE),
    ),
)


class Prose(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.depth += tag in SKIPPED

    def handle_endtag(self, tag: str) -> None:
        self.depth -= tag in SKIPPED

    def handle_data(self, data: str) -> None:
        if not self.depth and data.strip():
            self.texts.append(data.strip())


def raw_values(page: str, html: str) -> list[str]:
    parser = Prose()
    parser.feed(html)
    return [
        text
        for text in parser.texts
        if RAW.search(text)
        and not any(
            where in (page, "any") and allowed.search(text) for where, _, allowed in ALLOWED
        )
    ]


@pytest.mark.django_db
def test_no_page_shows_none_booleans_or_iso_dates(catalogue, django_user_model):
    call_command("load_demo", verbosity=0)
    client = signed_in_client(django_user_model.objects.get(username="compliance"))
    pages = {"dashboard": reverse("dashboard:organisation")}
    for model in admin.site._registry:
        if model._meta.app_label != "obligations":
            continue
        name = model._meta.model_name
        pages[f"list {name}"] = reverse(f"admin:obligations_{name}_changelist")
        first = model.objects.order_by("pk").first()
        if first is not None:
            pages[f"change {name}"] = reverse(f"admin:obligations_{name}_change", args=[first.pk])
            pages[f"history {name}"] = reverse(f"admin:obligations_{name}_history", args=[first.pk])
    found = {}
    for page, url in pages.items():
        response = client.get(url)
        if response.status_code == 200:
            raw = raw_values(page, response.content.decode())
            if raw:
                found[page] = raw[:3]
    assert found == {}


@pytest.mark.parametrize(
    ("model", "field", "stored", "shown"),
    [
        (Obligation, "notes", None, "\u2013"),
        (Obligation, "notes", "", "\u2013"),
        (Obligation, "owner", DeletedObject(User, None), "\u2013"),
        (Obligation, "applicable", True, "yes"),
        (Obligation, "applicable", False, "no"),
        (Obligation, "applies_since", dt.date(2025, 3, 17), "17 Mar 2025"),
        (OfcomNotice, "kind", "information", "Information notice (s.100)"),
        (Obligation, "notes", "True", "True"),  # someone's own words stay theirs
        (Obligation, "notes", "Northwind Chat", "Northwind Chat"),
    ],
)
def test_a_history_value_in_words(model, field, stored, shown):
    helper = WordsContextHelper(model.history.model, None)
    change = ModelChange(field, stored, stored)
    assert helper.prepare_delta_change_value(change, stored) == shown
