"""No silent change: every admin change form, submitted exactly as a browser shows it, changes
nothing (no row, no history, no event); and the API's PUT of what its GET returned likewise.

The change forms are found from the admin's registry; each model needs an object to open in
OBJECTS below (or its admin is read-only, or for operators' apps only). A select that does
not show the stored value sends another one: this is the test that catches it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from obligations.access.actions import end_membership
from obligations.access.models import Membership
from obligations.assessments.actions import rate_entry, start_assessment
from obligations.assessments.selectors import factor_rules
from obligations.catalogue.models import Feature, RiskFactor
from obligations.providers.actions import revenue_changed, save_service
from obligations.providers.models import RevenueBasis, RevenuePeriod
from obligations.register.actions import assign_owner
from obligations.register.states import EventSource
from obligations.reminders.endpoints import create_webhook
from obligations.reminders.models import WebhookKind
from tests.factories import moderation_log
from tests.helpers import OPERATOR_APPS, form_data, signed_in_client
from tests.world import World

User = get_user_model()
SOURCE = EventSource.ADMIN
# Not the register: Django's own log of admin saves, sessions, and the access log.
NOT_THE_RECORD = {"admin.logentry", "sessions.session", "obligations.accesslog"}


def everything() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table the tracker keeps, as the database holds it now."""
    state = {}
    for model in apps.get_models():
        label = model._meta.label_lower
        if label in NOT_THE_RECORD or model._meta.app_label in ("django_celery_beat",):
            continue
        state[label] = list(model._base_manager.order_by("pk").values())
    return state


def changed(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> dict[str, Any]:
    return {
        label: {"before": len(before[label]), "after": len(rows)}
        for label, rows in after.items()
        if rows != before[label]
    }


def _assessment(w: World) -> Any:
    ob = w.started("U2U-ILLEGAL-RA")
    return start_assessment(actor=w.people["casey"], cycle=ob.current_cycle, source=SOURCE)


def _service(w: World) -> Any:
    """A service whose every kind of field holds a value, each yes/no/unknown one a stored
    yes or no (the values a wrong select would send back as "unknown")."""
    w.service.children_likely_to_access = True
    w.service.uk_significant_users = True
    w.service.uk_target_market = False
    w.service.launch_date = dt.date(2024, 6, 1)
    save_service(
        actor=w.people["casey"],
        service=w.service,
        source=SOURCE,
        features=Feature.objects.filter(code__in=["e2ee_messaging", "livestreaming"]),
    )
    return w.service


def _provider(w: World) -> Any:
    RevenuePeriod.objects.create(
        provider=w.provider,
        start=dt.date(2024, 1, 1),
        end=dt.date(2024, 12, 31),
        amount_gbp="300000000.00",
        basis=RevenueBasis.AUDITED,
        uk_referable_gbp="40000000.00",
    )
    revenue_changed(actor=w.people["casey"], provider=w.provider, source=SOURCE)
    return w.provider


def _obligation(w: World) -> Any:
    ob = w.obligation()
    assign_owner(actor=w.people["casey"], obligation=ob, owner=w.people["rita"], source=SOURCE)
    return ob


def _webhook(w: World) -> Any:
    endpoint, _ = create_webhook(
        actor=w.people["ada"],
        organisation=w.org,
        kind=WebhookKind.SIGNED,
        url="https://hooks.example.com/osa/T0123",
        name="Compliance channel",
        notice_deadlines=False,
    )
    return endpoint


# model -> (who opens the page, the object)
OBJECTS: dict[str, tuple[str, Callable[[World], Any]]] = {
    "obligations.organisation": ("ada", lambda w: w.org),
    "obligations.provider": ("casey", _provider),
    "obligations.service": ("casey", _service),
    "obligations.obligation": ("casey", _obligation),
    "obligations.technologynotice": ("casey", World.technology_notice),
    "obligations.ofcomnotice": ("casey", World.ofcom_notice),
    "obligations.riskassessment": ("rita", _assessment),
    "obligations.webhookendpoint": ("ada", _webhook),
    "auth.user": ("root", lambda w: w.people["casey"]),
}


def change_forms() -> set[str]:
    """The models whose admin change page saves: every registered admin that may change."""
    found = set()
    superuser = User(is_superuser=True, is_staff=True, is_active=True)
    request = type("Request", (), {"user": superuser, "GET": {}, "POST": {}})()
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        if label in OPERATOR_APPS or model._meta.app_label in OPERATOR_APPS:
            continue
        if model_admin.has_change_permission(request, None):
            found.add(label)
    return found


def test_every_change_form_is_round_tripped():
    assert sorted(change_forms() ^ set(OBJECTS)) == []


@pytest.mark.parametrize("label", sorted(OBJECTS))
def test_a_change_form_submitted_unchanged_changes_nothing(world, label):
    who, make = OBJECTS[label]
    obj = make(world)
    client = signed_in_client(world.people[who])
    url = reverse(f"admin:{label.replace('.', '_')}_change", args=[obj.pk])
    page = client.get(url)
    assert page.status_code == 200
    data = form_data(page, f"{obj._meta.model_name}_form")
    before = everything()
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert changed(before, everything()) == {}


def test_the_children_select_shows_the_stored_answer(world):
    service = _service(world)
    page = signed_in_client(world.people["casey"]).get(
        reverse("admin:obligations_service_change", args=[service.pk])
    )
    sent = form_data(page, "service_form")
    assert (sent["children_likely_to_access"], sent["uk_target_market"]) == ("true", "false")
    assert sent["uk_material_risk"] == "unknown"


def test_the_api_put_of_an_unchanged_service_changes_nothing(world):
    service = _service(world)
    client = APIClient()
    client.force_login(world.people["casey"])
    url = f"/api/v1/services/{service.pk}/"
    body = client.get(url).json()
    before = everything()
    response = client.put(url, body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["register"] == {
        "created": [],
        "applies_again": [],
        "no_longer_applies": [],
    }
    assert changed(before, everything()) == {}


def test_an_obligation_whose_owner_has_left_saves_unchanged(world):
    ob = world.obligation()
    assign_owner(
        actor=world.people["casey"], obligation=ob, owner=world.people["rita"], source=SOURCE
    )
    rita = Membership.objects.get(user=world.people["rita"])
    end_membership(actor=world.people["ada"], membership=rita)
    client = signed_in_client(world.people["casey"])
    url = reverse("admin:obligations_obligation_change", args=[ob.pk])
    data = form_data(client.get(url), "obligation_form")
    before = everything()
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert changed(before, everything()) == {}


def test_a_changed_service_says_which_duties_it_added_or_ended(world):
    service = _service(world)
    client = signed_in_client(world.people["casey"])
    url = reverse("admin:obligations_service_change", args=[service.pk])
    data = form_data(client.get(url), "service_form")
    data["children_likely_to_access"] = "false"
    response = client.post(url, data, follow=True)
    message = next(str(m) for m in response.context["messages"])
    assert message.startswith("Register updated. "), message
    assert "no longer apply: Children's risk assessment (s.11)" in message, message
    assert "CHILD" not in message  # titles and sections, not the catalogue's codes


def test_a_rated_assessment_with_risk_factors_and_evidence_saves_unchanged(world):
    """The rows' checkboxes (risk factors, evidence) send back exactly what is stored."""
    assessment = _assessment(world)
    casey = world.people["casey"]
    link = moderation_log(assessment.cycle, casey)
    rules = factor_rules(assessment)
    extra = RiskFactor.objects.filter(code__in=["livestreaming", "user_groups"])
    for entry in assessment.entries.select_related("harm_kind").exclude(harm_kind__group="csea"):
        rate_entry(
            actor=casey,
            entry=entry,
            likelihood="medium",
            impact="high",
            rationale="Seen in reports.",
            risk_factors=[*[f for f, _ in rules.brought(entry.harm_kind.code)], *extra],
            evidence=[link],
            evidence_notes="Weekly extract.",
        )
    client = signed_in_client(world.people["rita"])
    url = reverse("admin:obligations_riskassessment_change", args=[assessment.pk])
    data = form_data(client.get(url), "riskassessment_form")
    assert sum(k.endswith("-risk_factors") for k in data) > 1
    before = everything()
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert changed(before, everything()) == {}
