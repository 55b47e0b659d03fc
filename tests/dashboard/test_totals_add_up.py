"""The dashboard's table adds up to its headline: provider-wide duties (fees, notices) have a
row of their own, and every link of that row lists exactly what it counts."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from obligations.register.models import Obligation
from tests.helpers import signed_in_client

pytestmark = pytest.mark.django_db


def test_every_column_of_the_service_table_sums_to_the_headline(catalogue, django_user_model):
    call_command("load_demo", verbosity=0)
    manager = django_user_model.objects.get(username="manager")
    response = signed_in_client(manager).get(reverse("dashboard:organisation"))
    context = response.context
    rows = [*context["services"], context["provider_wide"]]
    assert context["provider_wide"] is not None
    assert context["s"]["services_total"] == len(context["services"])  # all shown here
    for key in ("overdue", "applicable"):
        assert sum(row[key] for row in rows) == context["s"]["totals"][key], key
    assert 'id="provider-wide"' in response.content.decode()

    # Its overdue link lists the provider-wide overdue obligations, and only those.
    overdue = next(f for f in context["provider_wide"]["figures"] if f["key"] == "overdue")
    listed = signed_in_client(manager).get(overdue["href"])
    assert listed.status_code == 200
    shown = listed.context["cl"].queryset
    assert shown.count() == overdue["count"]
    assert not shown.filter(service__isnull=False).exists()
    assert Obligation.objects.filter(service__isnull=True).exists()


def test_make_runs_summary_counts_what_the_register_lists(catalogue, django_user_model):
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    said = re.search(r"(\d+) services, (\d+) obligations in .* \((\d+) of them", out.getvalue())
    assert said, out.getvalue()
    compliance = django_user_model.objects.get(username="compliance")
    listed = signed_in_client(compliance).get(reverse("admin:obligations_obligation_changelist"))
    assert int(said[2]) == listed.context["cl"].result_count
    provider_wide = listed.context["cl"].queryset.filter(service__isnull=True).count()
    assert int(said[3]) == provider_wide > 0
