"""Single sign-on end to end: a person clicks "Sign in with ..." on the tracker's sign-in page,
signs in at a real OpenID Connect provider (its own process), and comes back signed in with
the role their group gives, seeing their organisation's register and not another's; a person
none of whose groups is mapped is refused, and both are in the access log.

Playwright drives Debian's chromium headless; screenshots are kept in test-artifacts/browser/.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from obligations.access.models import AccessAction, AccessLog, Role, SsoGroupRole
from tests.browser import SHOTS
from tests.factories import OrganisationFactory, ProviderFactory, applied_service

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clock() -> Iterator[None]:
    """The real clock: the provider's ID tokens carry the real time, which the tracker checks
    (not yet valid, expired)."""
    yield None


def sign_in_through_provider(page: Any, base_url: str, provider: Any, username: str) -> None:
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.click(f"#single-sign-on a:has-text('Sign in with {provider.name}')")
    page.wait_for_selector("#provider-login")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}")
    page.click("#provider-login button[type=submit]")
    page.wait_for_load_state()


def test_a_person_signs_in_through_the_provider_and_sees_only_their_organisation(
    live_server, browser, sso, catalogue
):
    north, south = OrganisationFactory(name="North Media"), OrganisationFactory(name="South Ltd")
    applied_service(provider=ProviderFactory(organisation=north), name="North Chat")
    applied_service(provider=ProviderFactory(organisation=south), name="South Search")
    SsoGroupRole.objects.create(organisation=north, group="north-compliance", role=Role.COMPLIANCE)
    SsoGroupRole.objects.create(organisation=south, group="south-admins", role=Role.ADMIN)
    sso.add_user("grace", "pw-grace", groups=["north-compliance", "all-staff"])
    sso.add_user("mallory", "pw-mallory", groups=["all-staff"])

    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(f"{live_server.url}/admin/login/")
    assert page.locator("#id_password").is_visible()  # the password form stays
    page.screenshot(path=SHOTS / "sso-01-sign-in-page.png", full_page=True)
    sign_in_through_provider(page, live_server.url, sso, "grace")
    page.wait_for_selector("#user-tools")
    assert "GRACE" in page.inner_text("#user-tools").upper()
    page.screenshot(path=SHOTS / "sso-02-signed-in.png", full_page=True)

    page.goto(f"{live_server.url}/admin/obligations/obligation/")
    register = page.inner_text("#changelist")
    assert "North Chat" in register
    assert "South Search" not in register
    page.screenshot(path=SHOTS / "sso-03-own-register.png", full_page=True)
    signed_in = AccessLog.objects.get(action=AccessAction.SIGN_IN)
    assert signed_in.user is not None and signed_in.user.username == "grace"
    assert signed_in.user.memberships.get().role == Role.COMPLIANCE

    refused = browser.new_page(viewport={"width": 1366, "height": 768})
    sign_in_through_provider(refused, live_server.url, sso, "mallory")
    assert refused.url.startswith(f"{live_server.url}/admin/login/")
    assert "None of your groups at Test IdP" in refused.inner_text(".messagelist")
    assert refused.locator("#user-tools").count() == 0
    refused.screenshot(path=SHOTS / "sso-04-refused.png", full_page=True)
    failure = AccessLog.objects.get(action=AccessAction.SIGN_IN_FAILED)
    assert failure.username == "mallory"
    assert failure.description == (
        "Single sign-on through Test IdP refused: no mapped group (groups: all-staff)"
    )
    assert AccessLog.objects.filter(action=AccessAction.SIGN_IN).count() == 1
