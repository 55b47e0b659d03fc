"""Who is calling the API, and what they may do.

Only a token's SHA-256 is stored (`services.create_api_token`), so a leaked database does
not leak working keys.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from obligations.access.models import AccessAction, ApiToken
from obligations.access.signin import TooManyFailures, check_token_attempt_allowed, record_access
from obligations.access.tokens import secret_hash

KEYWORD = "Token"


class TokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>`; revoked, expired or unknown keys are refused."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the header as 'Authorization: Token <key>'."
            )
        try:
            check_token_attempt_allowed(request=request._request)
        except TooManyFailures as exc:
            raise exceptions.Throttled(detail=str(exc)) from None
        try:
            key = parts[1].decode()
        except UnicodeError:
            key = ""
        now = timezone.now()
        token = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=secret_hash(key), revoked_at__isnull=True)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .first()
        )
        if token is None or not token.user.is_active:
            # Guessing keys is throttled by address, like guessing passwords.
            record_access(
                user=None,
                action=AccessAction.TOKEN_FAILED,
                request=request._request,
                username=token.user.get_username() if token else "",
                description=f"Key starting {key[:8]!r}" if key.startswith("osa_") else "",
            )
            raise exceptions.AuthenticationFailed("The token is not valid, or was revoked.")
        # At most one write a minute per token, so busy scripts do not write on every call.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class TokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema (and Swagger UI's Authorize button) describes the token."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return build_bearer_security_scheme_object("Authorization", KEYWORD)


class TrackerAccess(permissions.BasePermission):
    """Reading needs a signed-in user; writing also needs a token that is not read-only.

    Which rows a user sees is decided by `selectors.scope` in every queryset (another
    organisation's object is a 404), and whether they may change one by the service layer's
    role check (`selectors.can_edit`), so the API enforces exactly what the admin does.
    """

    message = "This token is read-only."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return not (isinstance(request.auth, ApiToken) and request.auth.read_only)
