"""Single sign-on in the admin: the sign-in page's link and each organisation's group mapping,
only while it is configured; an organisation's admins map their own organisation's groups."""

import pytest
from django.test import Client

from obligations.access.models import Role, SsoGroupRole
from tests.factories import OrganisationFactory, member
from tests.helpers import admin_form_data

INLINE = "sso_group_roles"


@pytest.fixture
def orgs(db):  # type: ignore[no-untyped-def]
    north, south = OrganisationFactory(name="North"), OrganisationFactory(name="South")
    SsoGroupRole.objects.create(organisation=south, group="south-secret-group", role=Role.ADMIN)
    client = Client()
    client.force_login(member(north, role=Role.ADMIN, username="north-admin"))
    return {"north": north, "south": south, "client": client}


def org_page(orgs, name):  # type: ignore[no-untyped-def]
    return orgs["client"].get(f"/admin/obligations/organisation/{orgs[name].pk}/change/")


def test_without_single_sign_on_nothing_shows(orgs):
    assert "Sign in with" not in Client().get("/admin/login/").content.decode()
    assert INLINE not in org_page(orgs, "north").content.decode()


def test_an_organisation_admin_maps_their_own_groups(orgs, sso):
    login = Client().get("/admin/login/?next=/admin/obligations/obligation/").content.decode()
    assert (
        '<a class="button" href="/oidc/authenticate/?next=/admin/obligations/obligation/">'
        "Sign in with Test IdP</a>"
    ) in login

    page = org_page(orgs, "north")
    assert INLINE in page.content.decode()
    assert "south-secret-group" not in page.content.decode()
    data = admin_form_data(page)
    data.update(
        {
            f"{INLINE}-TOTAL_FORMS": "1",
            f"{INLINE}-0-group": "north-compliance",
            f"{INLINE}-0-role": Role.COMPLIANCE,
        }
    )
    response = orgs["client"].post(page.request["PATH_INFO"], data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(SsoGroupRole.objects.values_list("organisation__name", "group", "role")) == [
        ("North", "north-compliance", Role.COMPLIANCE),
        ("South", "south-secret-group", Role.ADMIN),
    ]
    assert org_page(orgs, "south").status_code == 404
