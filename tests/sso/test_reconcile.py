"""Single sign-on's users and roles, from the provider's verified claims: the user is found by
issuer and sub, the groups decide the memberships single sign-on gave (the most powerful role
wins), hand-made ones are left alone, nothing changes when nothing changed, and a person no
group lets in is refused."""

import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.db import DatabaseError, transaction

from obligations.access.actions import add_member
from obligations.access.admin_sso import sso_session_length
from obligations.access.models import (
    Membership,
    MembershipChange,
    MembershipEvent,
    Role,
    SsoGroupRole,
    SsoIdentity,
)
from obligations.access.sso import SsoRefused, _first_sign_in, sign_in_through_sso
from obligations.access.users import get_system_user
from tests.factories import OrganisationFactory, UserFactory, member

ISSUER = "https://idp.example/"


@pytest.fixture
def orgs(db, settings):  # type: ignore[no-untyped-def]
    settings.OIDC_PROVIDER_NAME = "Example IdP"
    north, south, west = (OrganisationFactory(name=n) for n in ("North", "South", "West"))
    for organisation, group, role in [
        (north, "north-staff", Role.AUDITOR),
        (north, "north-compliance", Role.COMPLIANCE),
        (north, "north-admins", Role.ADMIN),
        (north, "everyone", Role.MANAGER),
        (south, "south-managers", Role.MANAGER),
    ]:
        SsoGroupRole.objects.create(organisation=organisation, group=group, role=role)
    return {"north": north, "south": south, "west": west}


def sign_in(*groups: str, sub: str = "sub-ada", **claims: str) -> User:
    given = {"sub": sub, "preferred_username": "ada", "email": "ada@idp.example"}
    return sign_in_through_sso(issuer=ISSUER, claims={**given, **claims, "groups": list(groups)})


def roles(user: User) -> dict[str, tuple[str, bool]]:
    open_rows = Membership.objects.filter(user=user, ended_at__isnull=True)
    return {m.organisation.name: (m.role, m.via_sso) for m in open_rows}


def test_first_sign_in_makes_a_staff_user_without_a_password_holding_the_strongest_roles(orgs):
    user = sign_in("north-staff", "everyone", "north-compliance", "south-managers", "unmapped")

    assert user.is_staff and user.is_active and not user.is_superuser
    assert not user.has_usable_password()  # the password form can never sign them in
    assert (user.username, user.email) == ("ada", "ada@idp.example")
    assert SsoIdentity.objects.get(user=user).subject == "sub-ada"
    assert roles(user) == {"North": (Role.COMPLIANCE, True), "South": (Role.MANAGER, True)}
    events = MembershipEvent.objects.filter(membership__user=user)
    assert {e.kind for e in events} == {MembershipChange.ADDED}
    assert {e.actor for e in events} == {get_system_user()}
    north = events.get(organisation=orgs["north"])
    assert north.description == (
        "Single sign-on: Example IdP's group north-compliance gives this role."
    )


def test_changed_groups_change_and_end_what_single_sign_on_gave_and_nothing_else(orgs):
    user = sign_in("north-compliance", "south-managers")
    add_member(  # by hand, by West's admin
        actor=member(orgs["west"], role=Role.ADMIN), organisation=orgs["west"], user=user,
        role=Role.AUDITOR,
    )  # fmt: skip
    before = MembershipEvent.objects.count()

    sign_in("north-staff", "north-admins")

    assert roles(user) == {"North": (Role.ADMIN, True), "West": (Role.AUDITOR, False)}
    new = MembershipEvent.objects.order_by("pk")[before:]
    assert [(e.organisation.name, e.kind, e.from_role, e.to_role) for e in new] == [
        ("North", MembershipChange.ROLE_CHANGED, Role.COMPLIANCE, Role.ADMIN),
        ("South", MembershipChange.ENDED, Role.MANAGER, ""),
    ]
    assert {e.actor for e in new} == {get_system_user()}
    assert all("Example IdP" in e.description for e in new)
    assert "no group at Example IdP" in new[1].description


def test_unchanged_groups_write_nothing(orgs):
    user = sign_in("north-compliance", "south-managers")
    events, memberships = MembershipEvent.objects.count(), Membership.objects.count()

    assert sign_in("south-managers", "north-compliance") == user

    assert (MembershipEvent.objects.count(), Membership.objects.count()) == (events, memberships)


def test_a_membership_given_by_hand_is_left_alone_where_groups_also_map(orgs):
    user = sign_in("south-managers")
    add_member(actor=get_system_user(), organisation=orgs["north"], user=user, role=Role.AUDITOR)
    events = MembershipEvent.objects.count()

    sign_in("south-managers", "north-admins")

    assert roles(user) == {"North": (Role.AUDITOR, False), "South": (Role.MANAGER, True)}
    assert MembershipEvent.objects.count() == events


def test_the_user_is_found_by_issuer_and_sub_never_by_email_or_name(orgs):
    someone = UserFactory(username="ada", email="ada@idp.example")
    first = sign_in("south-managers")
    assert first != someone and first.username == "ada-2"
    # Another account at the provider, with the same name and address: another user.
    assert sign_in("south-managers", sub="sub-other").username == "ada-3"
    # The same account at another provider: another user too.
    other = sign_in_through_sso(
        issuer="https://elsewhere.example/",
        claims={"sub": "sub-ada", "preferred_username": "ada", "groups": ["south-managers"]},
    )
    assert other not in (first, someone)
    # The same account, its address changed at the provider: the same user, address updated.
    assert sign_in("south-managers", email="ada.new@idp.example") == first
    first.refresh_from_db()
    assert first.email == "ada.new@idp.example"
    assert roles(someone) == {}


def test_no_mapped_group_is_refused_and_makes_nothing(orgs):
    users = User.objects.count()
    with pytest.raises(SsoRefused) as refused:
        sign_in("unmapped", "other")
    assert "None of your groups at Example IdP" in str(refused.value)
    assert refused.value.reason == "no mapped group (groups: other, unmapped)"
    assert refused.value.username == "ada"
    assert User.objects.count() == users


def test_a_known_user_no_group_lets_in_any_more_is_refused_and_loses_those_memberships(orgs):
    user = sign_in("north-compliance")

    with pytest.raises(SsoRefused):
        sign_in()

    assert roles(user) == {}
    ended = MembershipEvent.objects.get(kind=MembershipChange.ENDED)
    assert (ended.actor, ended.membership.user) == (get_system_user(), user)


def test_a_deactivated_user_is_refused_and_nothing_changes(orgs):
    user = sign_in("north-compliance")
    User.objects.filter(pk=user.pk).update(is_active=False)
    events = MembershipEvent.objects.count()

    with pytest.raises(SsoRefused, match="deactivated"):
        sign_in("north-admins")

    assert MembershipEvent.objects.count() == events


def test_the_last_admin_is_kept_when_their_group_goes(orgs):
    user = sign_in("north-admins", "south-managers")

    sign_in("north-staff", "south-managers")  # North would have no admin: still one
    sign_in("south-managers")

    assert roles(user) == {"North": (Role.ADMIN, True), "South": (Role.MANAGER, True)}


@pytest.mark.postgres
def test_where_a_membership_came_from_never_changes_on_postgresql(orgs):
    user = sign_in("south-managers")
    with (
        pytest.raises(DatabaseError, match="where a membership came from never changes"),
        transaction.atomic(),
    ):
        Membership.objects.filter(user=user).update(via_sso=False)


def test_the_settings_turn_single_sign_on_on_only_when_configured_and_whole(tmp_path):
    """As a process started with the environment sees them (gunicorn, runserver)."""
    probe = (
        "import django; django.setup(); from django.conf import settings; "
        "from django.urls import reverse; print(settings.AUTHENTICATION_BACKENDS[-1]); "
        "print(reverse('oidc_authentication_callback'))"
    )
    env = {"PATH": "/usr/bin:/bin", "TRACKER_VAR_DIR": str(tmp_path)}
    env["DJANGO_SETTINGS_MODULE"] = "tracker.settings"
    endpoints = {
        name: "https://idp.example/x"
        for name in (
            "OIDC_RP_CLIENT_SECRET",
            "OIDC_OP_ISSUER",
            "OIDC_OP_AUTHORIZATION_ENDPOINT",
            "OIDC_OP_TOKEN_ENDPOINT",
            "OIDC_OP_USER_ENDPOINT",
            "OIDC_OP_JWKS_ENDPOINT",
        )
    }

    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", probe],
            cwd=django_settings.BASE_DIR,
            env={**env, **extra},
            capture_output=True,
            text=True,
        )

    configured = run(OIDC_RP_CLIENT_ID="tracker", **endpoints)
    assert configured.stdout.split() == ["obligations.access.sso.OidcBackend", "/oidc/callback/"]
    off = run()
    assert "NoReverseMatch" in off.stderr
    assert "django.contrib.auth.backends.ModelBackend" in off.stdout
    partial = run(OIDC_RP_CLIENT_ID="tracker", OIDC_RP_CLIENT_SECRET="s")
    assert partial.returncode == 1
    assert partial.stderr.splitlines()[:2] == [
        "Configuration error: OIDC_OP_ISSUER must be set when OIDC_RP_CLIENT_ID is "
        "(single sign-on)",
        "Configuration error: OIDC_OP_AUTHORIZATION_ENDPOINT must be set when OIDC_RP_CLIENT_ID is "
        "(single sign-on)",
    ]


def test_where_two_factor_is_required_an_admin_s_provider_must_have_used_one(orgs, settings):
    """OTP_REQUIRED_FOR_ADMINS: the tracker asks no code of a person signed in through the
    provider, so an administrator's sign-in counts only when the ID token says (RFC 8176
    `amr`) a second factor was used; others are let in as before."""
    settings.OTP_REQUIRED_FOR_ADMINS = True
    with pytest.raises(SsoRefused, match="Administrators must sign in with a second factor"):
        sign_in("north-admins", amr=["pwd"])
    assert sign_in("north-admins", amr=["pwd", "mfa"]).username == "ada"
    assert sign_in("north-compliance", sub="sub-bob", preferred_username="bob").username == "bob"
    settings.OTP_REQUIRED_FOR_ADMINS = False
    assert sign_in("north-admins").username == "ada"


def test_a_session_signed_in_through_the_provider_lasts_sso_session_hours(rf, settings):
    settings.SSO_SESSION_HOURS = 8
    request = rf.get("/")
    request.session = SessionStore()
    sso_user, password_user = User(username="a"), User(username="b")
    sso_user.backend = "obligations.access.sso.OidcBackend"
    password_user.backend = "django.contrib.auth.backends.ModelBackend"
    # The receiver of user_logged_in (the signal's other receivers need saved users).
    sso_session_length(sender=User, request=request, user=password_user)
    assert request.session.get_expiry_age() == django_settings.SESSION_COOKIE_AGE
    sso_session_length(sender=User, request=request, user=sso_user)
    assert request.session.get_expiry_age() == 8 * 60 * 60


def test_two_first_sign_ins_at_once_make_one_user(orgs):
    """The second of two sign-ins that both found no user yet (two tabs, a double click) gets
    the one the first made, not an error page."""
    first = sign_in("north-compliance")
    assert _first_sign_in(ISSUER, "sub-ada", {"preferred_username": "ada"}) == first
    assert User.objects.filter(sso_identities__subject="sub-ada").count() == 1
