"""What people read is words: every admin list, change page and history page of the register,
the dashboard, each service's measures and the printable records, on the demo data, show no
"None", "True" or "False", no ISO date and no catalogue code (a feature, harm or risk factor
as the catalogue file names it), outside form fields and code. Where raw values are meant,
the allow-list says why."""

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
from obligations.assessments.models import RiskAssessment
from obligations.catalogue.models import Feature, HarmKind, RiskFactor
from obligations.notices.models import OfcomNotice
from obligations.providers.models import Service
from obligations.register.models import Evidence, Obligation
from tests.helpers import signed_in_client

# Not read as prose: form controls (their values are inputs), code and scripts.
SKIPPED = {"script", "style", "select", "textarea", "svg", "pre", "code"}
# ... and no 12-hour time: a moment reads "17 Mar 2025 14:05" everywhere.
RAW = re.compile(r"\b(?:None|True|False)\b|\b\d{4}-\d{2}-\d{2}\b|\d [ap]\.m\.")
# (page, why the raw value is meant, the text it may appear in)
ALLOWED = (
    ("change duty", "the catalogue's rule, as the catalogue file states it", re.compile(r"^\{")),
    (
        "change catalogueversion",
        "the catalogue file's own JSON, as loaded",
        re.compile(r"^[\[{]"),
    ),
    *(
        (
            f"{page} {model}",
            "the reference catalogue's own identifiers, beside their labels: what the catalogue "
            "file, the API and the import name them by",
            re.compile(r"^[a-z0-9_]+$"),
        )
        for page in ("list", "change")
        for model in ("feature", "harmkind", "riskfactor", "codemeasure")
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


def catalogue_codes() -> re.Pattern[str]:
    """The catalogue's own names for features, harms and risk factors; those with no "_" are
    plain English words too ("hate", "gaming"), so only the ones no sentence uses are looked for."""
    codes = {
        code
        for model in (Feature, HarmKind, RiskFactor)
        for code in model.objects.values_list("code", flat=True)
        if "_" in code
    }
    return re.compile(r"\b(?:" + "|".join(sorted(codes)) + r")\b")


def raw_values(page: str, html: str, raw: re.Pattern[str] = RAW) -> list[str]:
    parser = Prose()
    parser.feed(html)
    return [
        text
        for text in parser.texts
        if raw.search(text)
        and not any(
            where in (page, "any") and allowed.search(text) for where, _, allowed in ALLOWED
        )
    ]


@pytest.mark.django_db
def test_no_page_shows_none_booleans_iso_dates_or_catalogue_codes(catalogue, django_user_model):
    call_command("load_demo", verbosity=0)
    client = signed_in_client(django_user_model.objects.get(username="compliance"))
    raw = re.compile(f"{RAW.pattern}|{catalogue_codes().pattern}")
    service = Service.objects.order_by("pk").first()
    assessment = RiskAssessment.objects.order_by("pk").first()
    evidence = Evidence.objects.order_by("pk").first()
    assert service is not None and assessment is not None and evidence is not None
    pages = {
        "dashboard": reverse("dashboard:organisation"),
        "measures": reverse("admin:obligations_service_measures", args=[service.pk]),
        "measures record": reverse("measures-record", args=[service.pk]),
        "assessment record": reverse("assessment-record", args=[assessment.pk]),
        "applicability preview": reverse("admin:obligations_service_preview"),
        "obligation with evidence": reverse(
            "admin:obligations_obligation_change", args=[evidence.cycle.obligation_id]
        ),
    }
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
            shown = raw_values(page, response.content.decode(), raw)
            if shown:
                found[page] = shown[:3]
    assert found == {}, "\n".join(f"{k}: {v}" for k, v in found.items())


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
