"""Lifting a sign-in lockout (signin.lift_lockout, the access log's admin actions)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from obligations.access.models import AccessAction, AccessLog, Role
from obligations.access.signin import lift_lockout
from tests.factories import OrganisationFactory, member

PASSWORD = "pw-for-tests-only"
IP = "203.0.113.9"


def sign_in(username: str, password: str = PASSWORD, ip: str = IP) -> str:
    response = Client().post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )
    return response.content.decode() if response.status_code == 200 else response["Location"]


@pytest.fixture
def team(db):  # type: ignore[no-untyped-def]
    ours, theirs = OrganisationFactory(name="Ours"), OrganisationFactory(name="Theirs")
    return {
        "casey": member(ours, username="casey"),
        "ada": member(ours, role=Role.ADMIN, username="ada"),
        "tess": member(theirs, role=Role.ADMIN, username="tess"),
        "root": get_user_model().objects.create_superuser("root", "root@example.test", "x"),
    }


def lock_out(username: str, settings) -> None:  # type: ignore[no-untyped-def]
    for _ in range(settings.SIGN_IN_FAILURES_PER_NAME):
        sign_in(username, "guess")
    assert "Too many" in sign_in(username)


def lift_in_admin(user, action: str) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    failures = AccessLog.objects.filter(action=AccessAction.SIGN_IN_FAILED)
    response = client.post(
        reverse("admin:obligations_accesslog_changelist"),
        {"action": action, "_selected_action": [failures.first().pk], "index": "0"},
        follow=True,
    )
    return response.content.decode()


def test_an_organisation_admin_lifts_a_members_lockout_on_record(team, settings, clock):
    lock_out("casey", settings)
    assert "Sign-in lockout lifted for casey from 203.0.113.9" in lift_in_admin(
        team["ada"], "lift_for_names"
    )
    lifted = AccessLog.objects.get(action=AccessAction.LOCKOUT_LIFTED)
    assert (lifted.user, lifted.username, lifted.ip_address) == (team["ada"], "casey", IP)
    assert lifted.organisation.name == "Ours"
    assert "by ada" in lifted.description
    assert sign_in("casey") == "/admin/"
    clock.shift(1)  # the test's clock stands still; a real one has moved on since the lift
    # Only failures after the lift count: four more do not lock again, a fifth does.
    for _ in range(settings.SIGN_IN_FAILURES_PER_NAME - 1):
        sign_in("casey", "guess")
    assert sign_in("casey") == "/admin/"
    sign_in("casey", "guess")
    assert "Too many" in sign_in("casey")


def test_another_organisations_admin_cannot_lift_it(team, settings):
    lock_out("casey", settings)
    with pytest.raises(PermissionDenied):
        lift_lockout(actor=team["tess"], username="casey", ip_address=IP, request=None)
    with pytest.raises(PermissionDenied):  # nor an unknown name, which no organisation has
        lift_lockout(actor=team["ada"], username="mallory", ip_address=IP, request=None)
    # In the admin she does not even see the rows; the action changes nothing.
    lift_in_admin(team["tess"], "lift_for_names")
    assert not AccessLog.objects.filter(action=AccessAction.LOCKOUT_LIFTED).exists()
    assert "Too many" in sign_in("casey")


def test_only_operators_lift_a_whole_address(team, settings):
    settings.SIGN_IN_FAILURES_PER_ADDRESS = 3
    for name in ("casey", "nobody", "someone"):
        sign_in(name, "guess")
    assert "Too many" in sign_in("ada")
    with pytest.raises(PermissionDenied):
        lift_lockout(actor=team["ada"], username="", ip_address=IP, request=None)
    # A lift for a name leaves the address's own count (spraying) as it was.
    lift_lockout(actor=team["ada"], username="casey", ip_address=IP, request=None)
    assert "Too many" in sign_in("casey")
    assert "every name" in lift_in_admin(team["root"], "lift_for_addresses")
    lifted = AccessLog.objects.filter(action=AccessAction.LOCKOUT_LIFTED).latest("at", "pk")
    assert (lifted.user, lifted.username, lifted.ip_address) == (team["root"], "", IP)
    assert sign_in("ada") == "/admin/"


def test_the_address_action_is_offered_to_operators_only(team):
    client = Client()
    client.force_login(team["ada"])
    page = client.get(reverse("admin:obligations_accesslog_changelist")).content.decode()
    assert "lift_for_names" in page and "lift_for_addresses" not in page
