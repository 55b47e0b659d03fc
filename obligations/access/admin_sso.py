"""Single sign-on in the admin: which identity provider group gives which role, on each
organisation's page (its admins and operators), and the sign-in page's button."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from obligations.access.models import SsoGroupRole
from obligations.access.sso import provider_name, sso_enabled
from obligations.adminkit import OrganisationAdminInline


class SsoGroupRoleInline(OrganisationAdminInline):
    """An organisation's group mapping; shown only while single sign-on is configured. A
    change takes effect at each member's next sign-in through the provider."""

    model = SsoGroupRole
    fields = ("group", "role")
    verbose_name_plural = "single sign-on: roles the identity provider's groups give"

    def _is_org_admin(self, request: HttpRequest, obj: Any) -> bool:
        return sso_enabled() and super()._is_org_admin(request, obj)


def single_sign_on(request: HttpRequest) -> dict[str, str]:
    """The provider's name for the sign-in page's "Sign in with ..." (empty: no button)."""
    return {"sso_provider": provider_name() if sso_enabled() else ""}


@receiver(user_logged_in, dispatch_uid="obligations.sso.session_length")
def sso_session_length(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """A session signed in through the provider ends after SSO_SESSION_HOURS: the next sign-in
    brings the memberships in step with the provider's groups again."""
    if request is not None and getattr(user, "backend", "") == "obligations.access.sso.OidcBackend":
        request.session.set_expiry(settings.SSO_SESSION_HOURS * 60 * 60)
