"""Sums of money and one-line names are held to one rule each (obligations/inputs.py), by
name, wherever they are typed: the API, the admin and the writes behind them."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from obligations.access.models import Role
from obligations.inputs import is_amount
from obligations.notices.actions import record_notice
from obligations.notices.models import NoticeKind, OfcomNotice
from obligations.providers.models import RevenuePeriod, Service
from obligations.register.models import Evidence
from obligations.register.states import EventSource
from tests.conftest import TODAY
from tests.factories import (
    OrganisationFactory,
    ProviderFactory,
    UserFactory,
    applied_service,
    member,
)
from tests.helpers import admin_form_data, client_for, revenue_row

AMOUNT = "an amount in pounds from 0 to 99,999,999,999,999.99, to the penny"
NOT_AMOUNTS = ["1e27", "NaN", "Infinity", "-Infinity", "-1", "0.001", "100000000000000"]
PROFILE = {"name": "New app", "user_to_user": True, "search": False}
NOT_ONE_LINE = ["Chat\r\nBEGIN:VEVENT", "Chat\nX", "Tab\there", "Nul\x00", "Bell\x07", "Ls\u2028x"]


@pytest.fixture
def team(catalogue):  # type: ignore[no-untyped-def]
    org = OrganisationFactory(name="Ours")
    provider = ProviderFactory(organisation=org, name="Northwind")
    service = applied_service(provider=provider, name="Chat")
    return {"org": org, "provider": provider, "service": service, "casey": member(org)}


@pytest.mark.parametrize(
    ("text", "ok"),
    [*((t, False) for t in NOT_AMOUNTS), ("0", True), ("99999999999999.99", True), ("1.5", True)],
)
def test_an_amount_is_pounds_to_the_penny_0_or_more_and_fits_the_columns(text, ok):
    assert is_amount(Decimal(text)) is ok


# --- Money -----------------------------------------------------------------------------


@pytest.mark.parametrize("revenue", NOT_AMOUNTS)
def test_the_applicability_api_refuses_a_revenue_that_is_not_an_amount_by_name(team, revenue):
    response = client_for(team["casey"]).post(
        "/api/v1/applicability/",
        {**PROFILE, "qualifying_worldwide_revenue": revenue},
        format="json",
    )
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert list(fields) == ["qualifying_worldwide_revenue"]
    assert AMOUNT in fields["qualifying_worldwide_revenue"][0]


def test_the_largest_amount_the_columns_hold_still_gets_a_cap(team):
    response = client_for(team["casey"]).post(
        "/api/v1/applicability/",
        {**PROFILE, "qualifying_worldwide_revenue": "99999999999999.99"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["max_penalty_gbp"] == "10000000000000.00"  # 10%, to the penny


@pytest.mark.parametrize("amount", NOT_AMOUNTS)
def test_the_admin_refuses_a_revenue_that_is_not_an_amount_on_its_row(client, team, amount):
    provider = team["provider"]
    # An operator: the revenue inline follows Django's model permissions, which members lack.
    client.force_login(UserFactory(is_superuser=True))
    url = reverse("admin:obligations_provider_change", args=[provider.pk])
    data = admin_form_data(client.get(url))
    data.update(revenue_row(amount))
    response = client.post(url, data)
    assert response.status_code == 200
    (formset,) = [
        i.formset
        for i in response.context["inline_admin_formsets"]
        if i.formset.prefix == "revenue_periods"
    ]
    assert list(formset.errors[0]) == ["amount_gbp"]
    assert not RevenuePeriod.objects.exists()


@pytest.mark.parametrize("field", ["single_penalty_gbp", "daily_penalty_gbp"])
def test_a_notice_penalty_below_zero_is_refused_by_name(team, field):
    notice = OfcomNotice(
        service=team["service"], kind=NoticeKind.PENALTY, given_on=TODAY, pay_by=TODAY
    )
    setattr(notice, field, Decimal("-50000"))
    with pytest.raises(ValidationError) as refused:
        record_notice(actor=team["casey"], notice=notice, source=EventSource.ADMIN)
    assert list(refused.value.message_dict) == [field]
    assert AMOUNT in refused.value.message_dict[field][0]
    assert not OfcomNotice.objects.exists()


# --- One-line names ------------------------------------------------------------------


@pytest.mark.parametrize("name", NOT_ONE_LINE)
def test_the_api_refuses_a_service_name_with_a_control_character(team, name):
    client = client_for(team["casey"])
    created = client.post(
        "/api/v1/services/",
        {"provider": team["provider"].pk, "name": name, "user_to_user": True},
        format="json",
    )
    changed = client.patch(f"/api/v1/services/{team['service'].pk}/", {"name": name}, format="json")
    for response in (created, changed):
        assert response.status_code == 400
        assert response.json()["error"] == (
            "name: Enter one line: no line breaks, tabs or other control characters."
        )
    assert list(Service.objects.values_list("name", flat=True)) == ["Chat"]


def test_the_api_refuses_an_evidence_title_on_two_lines(team):
    ob = team["service"].obligations.get(duty__code="U2U-RECORDS")
    response = client_for(team["casey"]).post(
        f"/api/v1/obligations/{ob.pk}/evidence/",
        {"url": "https://wiki.test/policy", "title": "Policy\r\nForged: approved"},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["title"]
    assert not Evidence.objects.exists()


@pytest.mark.parametrize(
    ("admin_url", "data", "field"),
    [
        (
            "admin:obligations_organisation_add",
            {"name": "Evil\r\nCorp", "reminder_lead_days": "[30, 7, 1]"},
            "name",
        ),
        ("admin:obligations_provider_add", {"name": "Evil\nLtd"}, "name"),
        (
            "admin:obligations_provider_add",
            {"name": "Fine", "legal_name": "Evil\tLtd"},
            "legal_name",
        ),
        ("admin:obligations_apitoken_add", {"name": "nightly\x07export"}, "name"),
    ],
)
def test_the_admin_refuses_a_name_with_a_control_character_on_its_field(
    client, team, admin_url, data, field
):
    admin = member(team["org"], role=Role.ADMIN, username="ada")
    admin.is_superuser = True  # adding an organisation is the operators' job
    admin.save()
    client.force_login(admin)
    url = reverse(admin_url)
    form = admin_form_data(client.get(url))
    form.update({"organisation": team["org"].pk, "user": admin.pk, **data})
    response = client.post(url, form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert "Enter one line" in errors[field][0]


def test_the_admin_evidence_form_refuses_a_title_on_two_lines(client, team):
    casey = team["casey"]
    ob = team["service"].obligations.get(duty__code="U2U-RECORDS")
    client.force_login(casey)
    url = reverse("admin:obligations_obligation_evidence", args=[ob.pk])
    response = client.post(url, {"url": "https://wiki.test/a", "title": "Policy\nv2"}, follow=True)
    shown = [str(message) for message in response.context["messages"]]
    assert shown == [
        "Evidence not added: Title: Enter one line: no line breaks, tabs or other control "
        "characters."
    ]
    assert not Evidence.objects.exists()
