"""The admin's home page, grouped for people: the work first, then services and providers,
the law's reference data, and access; nothing the admin shows goes missing."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from obligations.access.models import Role
from tests.factories import OrganisationFactory, UserFactory, member
from tests.helpers import signed_in_client

pytestmark = pytest.mark.django_db


def sections(page: str) -> list[str]:
    return re.findall(r'<caption>\s*<a href="[^"]*" class="section"[^>]*>([^<]+)</a>', page)


def test_an_operator_sees_the_work_first_and_every_model():
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    page = signed_in_client(root).get(reverse("admin:index")).content.decode()
    assert sections(page)[:4] == ["Work", "Services and providers", "Reference", "Access"]
    for model in admin.site._registry:
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert f'href="{changelist}"' in page, model
    work = page[page.index(">Work<") : page.index(">Services and providers<")]
    assert "Obligations" in work and "Risk assessments" in work


def test_a_compliance_officer_sees_the_groups_without_the_operators_apps():
    page = (
        signed_in_client(member(OrganisationFactory(), role=Role.COMPLIANCE))
        .get(reverse("admin:index"))
        .content.decode()
    )
    assert sections(page)[:2] == ["Work", "Services and providers"]
    assert "Periodic tasks" not in page and ">Groups<" not in page


def test_an_apps_own_page_keeps_djangos_list():
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    response = signed_in_client(root).get(reverse("admin:app_list", args=["obligations"]))
    assert response.status_code == 200


def test_every_kind_of_page_has_the_trackers_icon(catalogue):
    user = member(OrganisationFactory(), role=Role.COMPLIANCE)
    client = signed_in_client(user)
    pages = [client.get(reverse(name)) for name in ("admin:index", "dashboard:organisation")]
    pages.append(Client().get(reverse("admin:login")))
    for response in pages:
        assert response.status_code == 200
        assert 'rel="icon" href="/static/obligations/favicon.svg"' in response.content.decode()
