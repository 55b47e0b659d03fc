"""Two-factor sign-in (obligations/access/otp.py, admin_otp.py): enrolling, the code a
password sign-in then needs, and OTP_REQUIRED_FOR_ADMINS."""

from __future__ import annotations

import re
import time
from binascii import unhexlify

import pytest
from django.contrib.auth.backends import ModelBackend
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from obligations.access.models import AccessAction, AccessLog, Role
from obligations.access.otp import new_secret
from obligations.access.tokens import create_api_token
from tests.factories import OrganisationFactory, member

PASSWORD = "pw-for-tests-only"
ENROL = "/admin/two-factor/"


class IdentityProviderBackend(ModelBackend):
    """Stands for the single sign-on backend: a sign-in that is not by password."""


def code(key: str) -> str:
    totp = TOTP(unhexlify(key))
    totp.time = time.time()
    return f"{totp.token():06d}"


def wrong(key: str) -> str:
    return f"{(int(code(key)) + 1) % 10**6:06d}"


def sign_in(client: Client, username: str, otp: str = "", ip: str = "203.0.113.9") -> str:
    response = client.post(
        reverse("admin:login"),
        {"username": username, "password": PASSWORD, "otp_token": otp, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )
    return response.content.decode() if response.status_code == 200 else response["Location"]


@pytest.fixture
def people(db):  # type: ignore[no-untyped-def]
    org = OrganisationFactory()
    return {
        "ada": member(org, role=Role.ADMIN, username="ada"),
        "casey": member(org, username="casey"),
    }


def with_device(user) -> str:  # type: ignore[no-untyped-def]
    key = new_secret()
    TOTPDevice.objects.create(user=user, name="Phone", key=key, confirmed=True)
    return key


def test_enrolment_shows_the_secret_and_takes_the_device_only_with_the_apps_code(people):
    client = Client()
    client.force_login(people["ada"])
    page = client.get(ENROL).content.decode()
    assert "otpauth://totp/OSA%20tracker%3Aada?secret=" in page and "<svg" in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "no inline script (the CSP)"
    key = client.session["otp_pending_key"]
    # Submitted without a code, or with a wrong one: nothing changes.
    assert "This field is required" in client.post(ENROL, {}).content.decode()
    assert "not the app" in client.post(ENROL, {"code": wrong(key)}).content.decode()
    assert not TOTPDevice.objects.exists()
    assert client.session["otp_pending_key"] == key
    assert not AccessLog.objects.filter(action=AccessAction.TWO_FACTOR_ENROLLED).exists()

    response = client.post(ENROL, {"code": code(key)})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    device = TOTPDevice.objects.get()
    assert (device.user, device.key, device.confirmed) == (people["ada"], key, True)
    enrolled = AccessLog.objects.get(action=AccessAction.TWO_FACTOR_ENROLLED)
    assert enrolled.user == people["ada"]
    assert "is on" in client.get(ENROL).content.decode()


def test_a_user_with_a_device_signs_in_only_with_its_code(people, clock):
    key = with_device(people["casey"])
    assert "correct username and password" in sign_in(Client(), "casey")
    assert "correct username and password" in sign_in(Client(), "casey", wrong(key))
    failures = AccessLog.objects.filter(action=AccessAction.SIGN_IN_FAILED, username="casey")
    assert sorted(failures.values_list("description", flat=True)) == [
        f"Sign-in failed for 'casey' (user {people['casey'].pk}): no two-factor code",
        f"Sign-in failed for 'casey' (user {people['casey'].pk}): wrong two-factor code",
    ]
    assert not AccessLog.objects.filter(action=AccessAction.SIGN_IN).exists()
    clock.shift(60)  # past django-otp's own pause after a wrong code (a second, doubling)
    client = Client()
    assert sign_in(client, "casey", code(key)) == "/admin/"
    assert AccessLog.objects.filter(action=AccessAction.SIGN_IN, user=people["casey"]).exists()
    assert client.session["otp_device_id"] == TOTPDevice.objects.get().persistent_id
    # Without a device, the password alone still signs in.
    assert sign_in(Client(), "ada") == "/admin/"


def test_wrong_codes_count_towards_the_sign_in_throttle(people, settings):
    key = with_device(people["casey"])
    for _ in range(settings.SIGN_IN_FAILURES_PER_NAME):
        sign_in(Client(), "casey", wrong(key))
    assert "Too many failed sign-ins" in sign_in(Client(), "casey", code(key))


def test_admins_without_a_device_are_kept_on_the_enrolment_page_when_required(people, settings):
    settings.OTP_REQUIRED_FOR_ADMINS = True
    client = Client()
    assert sign_in(client, "ada") == "/admin/"
    assert client.get("/admin/")["Location"] == ENROL
    assert client.get("/admin/obligations/service/")["Location"] == ENROL
    assert client.get("/dashboard/")["Location"] == ENROL
    assert client.get(ENROL).status_code == 200
    # Everyone else works as before.
    casey = Client()
    assert sign_in(casey, "casey") == "/admin/"
    assert casey.get("/admin/").status_code == 200
    # The API with a token is not a session: unaffected.
    _, key = create_api_token(actor=people["ada"], name="script")
    assert Client().get("/api/v1/services/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    # Once enrolled, the session is verified and the admin opens.
    client.post(ENROL, {"code": code(client.session["otp_pending_key"])})
    assert client.get("/admin/").status_code == 200


def test_a_required_admin_whose_session_has_no_code_signs_in_again(people, settings):
    settings.OTP_REQUIRED_FOR_ADMINS = True
    with_device(people["ada"])
    client = Client()
    client.force_login(people["ada"])  # a session from before the device
    response = client.get("/admin/obligations/service/")
    assert response["Location"].startswith("/admin/login/?next=")
    assert "_auth_user_id" not in client.session


def test_a_single_sign_on_session_counts_as_verified(people, settings):
    settings.OTP_REQUIRED_FOR_ADMINS = True
    backend = f"{__name__}.IdentityProviderBackend"
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", backend]
    client = Client()
    client.force_login(people["ada"], backend=backend)
    assert client.get("/admin/").status_code == 200
    password = Client()
    password.force_login(people["ada"])
    assert password.get("/admin/")["Location"] == ENROL


def test_the_sign_in_page_asks_for_the_code(db):
    page = Client().get(reverse("admin:login")).content.decode()
    assert 'name="otp_token"' in page and 'autocomplete="one-time-code"' in page
    assert reverse("admin_password_reset") in page
