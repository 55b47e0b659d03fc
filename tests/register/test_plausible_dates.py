"""A date no one would type (9999-12-31, 1066-10-14) is refused where it is typed, by name,
and cannot reach the rows the reminder sweep computes with."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from obligations.dates import validate_plausible_date
from obligations.providers.actions import record_significant_change
from obligations.providers.models import SignificantChange
from obligations.register.actions import set_due_date
from obligations.register.evidence import add_evidence_link
from obligations.register.models import Evidence, ObligationCycle
from obligations.register.states import EventSource
from obligations.register.workflow import do_start
from obligations.tasks import day_of
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member
from tests.helpers import client_for

FAR = dt.date(9999, 12, 31)
SOURCE = EventSource.ADMIN


@pytest.fixture
def team(catalogue):  # type: ignore[no-untyped-def]
    org = OrganisationFactory(name="Ours")
    service = applied_service(provider=ProviderFactory(organisation=org), name="Chat")
    casey = member(org, username="casey")
    obligation = service.obligations.get(duty__code="U2U-RECORDS")
    do_start(actor=casey, cycle=obligation.current_cycle, source=SOURCE)
    obligation.refresh_from_db()
    return {"service": service, "casey": casey, "obligation": obligation}


@pytest.mark.parametrize(
    ("day", "ok"),
    [
        (dt.date(1989, 12, 31), False),
        (dt.date(1990, 1, 1), True),
        (dt.date(2100, 12, 31), True),
        (dt.date(2101, 1, 1), False),
        (FAR, False),
        (dt.datetime(2101, 1, 1, 0, 30, tzinfo=dt.UTC), False),
        (None, True),
    ],
)
def test_the_range_is_1990_to_2100_both_days_included(day, ok):  # type: ignore[no-untyped-def]
    if ok:
        validate_plausible_date(day)
    else:
        with pytest.raises(ValidationError, match="Enter a date from 1 Jan 1990 to 31 Dec 2100"):
            validate_plausible_date(day)


def test_the_api_refuses_a_due_date_of_9999_naming_the_field(team):
    client = client_for(team["casey"])
    url = f"/api/v1/obligations/{team['obligation'].pk}/due-date/"
    response = client.post(url, {"due_date": "9999-12-31", "reason": "Far away"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["due_date"]
    assert "1 Jan 1990 to 31 Dec 2100" in response.json()["error"]
    team["obligation"].current_cycle.refresh_from_db()
    assert team["obligation"].current_cycle.due_date != FAR


def test_the_api_refuses_evidence_expiring_in_9999_and_stores_nothing(team):
    client = client_for(team["casey"])
    url = f"/api/v1/obligations/{team['obligation'].pk}/evidence/"
    response = client.post(
        url, {"url": "https://wiki.test/a", "expires_on": "9999-12-31"}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["expires_on"]
    assert not Evidence.objects.exists()


def test_the_api_refuses_a_service_launching_in_9999(team):
    client = client_for(team["casey"])
    url = f"/api/v1/services/{team['service'].pk}/"
    response = client.patch(url, {"launch_date": "9999-12-31"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["launch_date"]


def test_the_admin_evidence_form_names_the_expiry_it_refuses(team, client):
    client.force_login(team["casey"])
    obligation = team["obligation"]
    url = reverse("admin:obligations_obligation_evidence", args=[obligation.pk])
    response = client.post(
        url,
        {"url": "https://wiki.test/a", "title": "Policy", "expires_on": "9999-12-31"},
        follow=True,
    )
    shown = [str(message) for message in response.context["messages"]]
    assert shown == ["Evidence not added: Expires on: Enter a date from 1 Jan 1990 to 31 Dec 2100."]
    assert not Evidence.objects.exists()


def test_the_writes_refuse_it_whoever_calls_them(team):
    cycle = team["obligation"].current_cycle
    with pytest.raises(ValidationError) as refused:
        set_due_date(actor=team["casey"], cycle=cycle, due=FAR, reason="x", source=SOURCE)
    assert list(refused.value.message_dict) == ["due_date"]
    with pytest.raises(ValidationError) as refused:
        add_evidence_link(
            actor=team["casey"],
            cycle=cycle,
            url="https://wiki.test/a",
            title="a",
            source=SOURCE,
            expires_on=FAR,
        )
    assert list(refused.value.message_dict) == ["expires_on"]
    with pytest.raises(ValidationError) as refused:
        record_significant_change(
            actor=team["casey"],
            service=team["service"],
            description="New feed",
            planned_for=FAR,
            source=SOURCE,
        )
    assert list(refused.value.message_dict) == ["planned_for"]
    assert not SignificantChange.objects.exists()


def test_the_database_holds_the_sweeps_dates_in_range_even_past_the_writes(team):
    cycle = team["obligation"].current_cycle
    with pytest.raises(IntegrityError), transaction.atomic():
        ObligationCycle.objects.filter(pk=cycle.pk).update(due_date=FAR)
    evidence = add_evidence_link(
        actor=team["casey"], cycle=cycle, url="https://wiki.test/a", title="a", source=SOURCE
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Evidence.objects.filter(pk=evidence.pk).update(expires_on=FAR)


def test_the_sweep_is_not_run_as_of_a_day_no_one_would_type(db):
    with pytest.raises(CommandError, match="--date must be a date from 1 Jan 1990 to 31 Dec 2100"):
        call_command("send_reminders", "--date", "9999-12-31")
    with pytest.raises(ValidationError):
        day_of("9999-12-31")
    assert day_of(None) == dt.date(2026, 11, 24)
