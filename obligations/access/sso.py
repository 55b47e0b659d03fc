"""Single sign-on through an OpenID Connect identity provider (README, "Single sign-on").

mozilla-django-oidc runs the authorisation code flow; `OidcBackend` checks the ID token's
issuer and audience, finds the user by the provider's `sub` (never by e-mail), and keeps the
memberships single sign-on gave in step with the provider's groups (`SsoGroupRole`), through
the membership writes, as the system user. A person none of whose groups gives a role is
refused, and so is an administrator whose provider used no second factor when two-factor is
required of administrators; every refusal is in the access log. A session signed in this
way lasts SSO_SESSION_HOURS, so that groups taken away at the provider bite within hours."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

import jwt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from requests import RequestException

from obligations.access.actions import add_member, change_role, end_membership
from obligations.access.models import (
    AccessAction,
    Membership,
    Organisation,
    Role,
    SsoGroupRole,
    SsoIdentity,
)
from obligations.access.signin import record_access
from obligations.access.users import get_system_user

logger = logging.getLogger(__name__)

# When several of a person's groups give roles in one organisation, the first of these wins.
ROLE_POWER = (Role.ADMIN, Role.COMPLIANCE, Role.MANAGER, Role.AUDITOR)


class SsoRefused(Exception):
    """A sign-in through the identity provider that is not let in; the message is for the
    person, `reason` for the access log."""

    def __init__(self, message: str, reason: str, username: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.username = username


def sso_enabled() -> bool:
    return bool(settings.OIDC_RP_CLIENT_ID)


def provider_name() -> str:
    return str(settings.OIDC_PROVIDER_NAME)


def groups_of(claims: dict[str, Any]) -> list[str]:
    """The groups claim as a list of names (a provider with one group may send a string)."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(value, str):
        value = [value]
    return sorted({str(group) for group in value if str(group).strip()})


def roles_for_groups(groups: Iterable[str]) -> dict[int, tuple[str, list[str]]]:
    """Each organisation where the groups give a role: the most powerful one, and the groups
    that give it."""
    found: dict[int, tuple[str, list[str]]] = {}
    rows = SsoGroupRole.objects.filter(group__in=list(groups)).order_by("group")
    for organisation_id, role, group in rows.values_list("organisation_id", "role", "group"):
        held = found.get(organisation_id)
        if held is None or ROLE_POWER.index(role) < ROLE_POWER.index(held[0]):
            found[organisation_id] = (role, [group])
        elif role == held[0]:
            held[1].append(group)
    return found


def reconcile_memberships(user: User, wanted: dict[int, tuple[str, list[str]]]) -> None:
    """Make the user's single sign-on memberships what the groups give: add, change the role
    of, or end them; memberships an admin gave are left alone. Nothing changed, nothing
    written. Each change names the system user and says the provider's groups decided it."""
    system, provider = get_system_user(), provider_name()
    open_rows = Membership.objects.filter(user=user, ended_at__isnull=True).select_related(
        "organisation", "user"
    )
    held = {m.organisation_id: m for m in open_rows}
    for organisation_id, (role, groups) in sorted(wanted.items()):
        said = (
            f"group {groups[0]} gives" if len(groups) == 1 else f"groups {', '.join(groups)} give"
        )
        why = f"Single sign-on: {provider}'s {said} this role."[:300]
        membership = held.pop(organisation_id, None)
        if membership is None:
            add_member(
                actor=system,
                organisation=Organisation.objects.get(pk=organisation_id),
                user=user,
                role=role,
                description=why,
                via_sso=True,
            )
        elif membership.via_sso and membership.role != role:
            with _keeping_the_last_admin(membership):
                change_role(actor=system, membership=membership, role=role, description=why)
    for membership in held.values():
        if membership.via_sso:
            with _keeping_the_last_admin(membership):
                end_membership(
                    actor=system,
                    membership=membership,
                    description=f"Single sign-on: no group at {provider} gives a role here now.",
                )


@contextlib.contextmanager
def _keeping_the_last_admin(membership: Membership) -> Iterator[None]:
    """The membership writes refuse to demote or end an organisation's last admin (nobody could
    manage its members): then the membership stays as it is, and the sign-in goes on."""
    try:
        yield
    except ValidationError:
        logger.warning("single sign-on kept %s: the organisation's last admin", membership)


def _username_for(claims: dict[str, Any]) -> str:
    """A new, unused username from the provider's preferred name (or the e-mail's local
    part), suffixed when taken: it only labels the account, and never finds one."""
    wanted = str(claims.get("preferred_username") or str(claims.get("email", "")).split("@")[0])
    base = re.sub(r"[^\w.@+-]", "", wanted)[:140] or "sso-user"
    candidate, n = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _update_details(user: User, claims: dict[str, Any]) -> None:
    """Name and e-mail from the provider (reminders go to the e-mail), saved only if changed."""
    fresh = {
        "email": str(claims.get("email") or user.email)[:254],
        "first_name": str(claims.get("given_name") or user.first_name)[:150],
        "last_name": str(claims.get("family_name") or user.last_name)[:150],
    }
    changed = [field for field, value in fresh.items() if getattr(user, field) != value]
    for field in changed:
        setattr(user, field, fresh[field])
    if changed:
        user.save(update_fields=changed)


def _no_role(groups: list[str], username: str) -> SsoRefused:
    return SsoRefused(
        f"None of your groups at {provider_name()} gives you a role in the tracker. Ask your "
        "organisation's admin to map one of your groups to a role.",
        f"no mapped group (groups: {', '.join(groups) or 'none'})",
        username,
    )


def _first_sign_in(issuer: str, subject: str, claims: dict[str, Any]) -> User:
    """A user for the provider's `subject`; if the same person's other sign-in made one a
    moment ago (two tabs, a double click), that one."""
    try:
        with transaction.atomic():
            user = User(username=_username_for(claims), is_staff=True)
            # Only the provider signs them in: the password form can never be used for them.
            user.set_unusable_password()
            user.save()
            SsoIdentity.objects.create(user=user, issuer=issuer, subject=subject)
            return user
    except IntegrityError:
        made = SsoIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject)
        identity = made.first()
        if identity is None:  # their name was taken by someone else at the same moment
            raise SsoRefused(
                "Signing in did not work this time; please try again.", "username taken"
            ) from None
        return identity.user


def sign_in_through_sso(*, issuer: str, claims: dict[str, Any]) -> User:
    """The user the provider's verified claims name, their memberships brought in step with
    its groups; SsoRefused when they are not to be let in."""
    subject = str(claims.get("sub") or "")
    if not subject:
        raise SsoRefused("The identity provider did not say who you are.", "no sub claim")
    groups = groups_of(claims)
    wanted = roles_for_groups(groups)
    with transaction.atomic():
        identities = SsoIdentity.objects.select_related("user")
        identity = identities.filter(issuer=issuer, subject=subject).first()
        if identity is None:
            if not wanted:  # nothing is made for someone who may not come in
                said = claims.get("preferred_username") or claims.get("email") or subject
                raise _no_role(groups, str(said))
            user = _first_sign_in(issuer, subject, claims)
        else:
            user = identity.user
        if not user.is_active:
            raise SsoRefused(
                "Your account is deactivated.", "deactivated account", user.get_username()
            )
        _update_details(user, claims)
        # Ended even when refused below: the provider says they belong nowhere now.
        reconcile_memberships(user, wanted)
    if not wanted:
        raise _no_role(groups, user.get_username())
    if settings.OTP_REQUIRED_FOR_ADMINS and not second_factor_used(claims):
        admin_anywhere = any(role == Role.ADMIN for role, _ in wanted.values())
        if admin_anywhere or user.is_superuser:
            raise SsoRefused(
                f"Administrators must sign in with a second factor, and {provider_name()} did "
                "not use one this time. Sign in there with your second factor and try again.",
                f"no second factor in the ID token (amr: {claims.get('amr')!r})",
                user.get_username(),
            )
    return user


def second_factor_used(claims: dict[str, Any]) -> bool:
    """Whether the provider says (RFC 8176 `amr`) this sign-in used more than a password.
    Where two-factor is required of administrators (OTP_REQUIRED_FOR_ADMINS), a sign-in
    through the provider counts only with one of OIDC_SECOND_FACTOR_AMR."""
    amr = claims.get("amr") or []
    methods = {amr} if isinstance(amr, str) else {str(m) for m in amr}
    return bool(methods & set(settings.OIDC_SECOND_FACTOR_AMR))


class OidcBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's code flow, with the tracker's checks, users and roles."""

    request: HttpRequest

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        try:
            user: User | None = super().authenticate(request, **kwargs)
        except SsoRefused as refused:
            self._refused(str(refused), refused.reason, refused.username)
            return None
        except (RequestException, SuspiciousOperation, jwt.PyJWTError, ValidationError) as exc:
            logger.warning("single sign-on failed: %s", exc)
            self._refused(
                f"Signing in through {provider_name()} did not work; please try again.",
                f"{type(exc).__name__}: {exc}",
            )
            return None
        return user

    def _refused(self, message: str, reason: str, username: str = "") -> None:
        record_access(
            user=None,
            action=AccessAction.SIGN_IN_FAILED,
            request=self.request,
            username=username,
            description=f"Single sign-on through {provider_name()} refused: {reason}",
        )
        messages.error(self.request, message)

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """The signature and nonce (mozilla-django-oidc), then that the token is the
        configured provider's and meant for this tracker, which it does not check."""
        payload: dict[str, Any] = super().verify_token(token, **kwargs)
        if payload.get("iss") != settings.OIDC_OP_ISSUER:
            raise SuspiciousOperation(f"ID token from another issuer: {payload.get('iss')!r}")
        audience = payload.get("aud") or []
        if self.OIDC_RP_CLIENT_ID not in ([audience] if isinstance(audience, str) else audience):
            raise SuspiciousOperation("ID token meant for another client")
        return payload

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> User:
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SsoRefused(
                f"{provider_name()} answered for someone else; please try again.",
                "userinfo sub differs from the ID token's",
            )
        # The ID token's verified claims, with userinfo's (the groups, often) beside them.
        return sign_in_through_sso(issuer=payload["iss"], claims={**userinfo, **payload})
