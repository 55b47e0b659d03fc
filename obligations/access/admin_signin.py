"""The sign-in page's throttle and two-factor code, and the access log in the admin (with
lifting a sign-in lockout)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model, user_logged_in, user_login_failed
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.dispatch import receiver
from django.http import HttpRequest

from obligations.access.models import AccessAction, AccessLog, Membership, Role
from obligations.access.otp import check_sign_in_code
from obligations.access.selectors import active_memberships, has_role
from obligations.access.signin import (
    TooManyFailures,
    check_sign_in_allowed,
    lift_lockout,
    record_access,
)
from obligations.adminkit import CountedOnceAdmin, NotFoundAdmin, ReadOnlyAdmin, acting_user

FAILURES = (AccessAction.SIGN_IN_FAILED, AccessAction.SIGN_IN_THROTTLED)


class ThrottledLoginForm(AdminAuthenticationForm):
    """The admin's sign-in form, refusing (before any password is checked) while the name or
    the address has failed too often (signin.check_sign_in_allowed), and asking a user with a
    two-factor device for its code (otp.check_sign_in_code)."""

    otp_token = forms.CharField(
        label="Two-factor code",
        required=False,
        max_length=8,
        help_text="The 6 digits your authenticator app shows, if you have set one up.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean(self) -> dict[str, Any]:
        if self.request is not None:
            try:
                check_sign_in_allowed(
                    username=self.cleaned_data.get("username") or "", request=self.request
                )
            except TooManyFailures as exc:
                raise ValidationError(str(exc), code="throttled") from None
        cleaned = super().clean()
        if self.user_cache is not None:
            try:
                device = check_sign_in_code(
                    user=self.user_cache,
                    code=cleaned.get("otp_token") or "",
                    request=self.request,
                )
            except ValidationError:
                raise self.get_invalid_login_error() from None
            if device is not None:
                # django-otp's user_logged_in receiver keeps it in the session: verified.
                self.user_cache.otp_device = device  # type: ignore[attr-defined]
        return cleaned


admin.site.login_form = ThrottledLoginForm
# Django's login page with the code's field added.
admin.site.login_template = "admin/obligations/login.html"


@receiver(user_logged_in, dispatch_uid="obligations.access_log.signed_in")
def signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    record_access(user=user, action=AccessAction.SIGN_IN, request=request)


@receiver(user_login_failed, dispatch_uid="obligations.access_log.sign_in_failed")
def sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    if "username" not in credentials:
        return  # single sign-on: access/sso.py records its failures, with the reason
    username = str(credentials.get("username") or "")
    # The account's user, when the name exists, so that its organisations' admins see it.
    user = get_user_model().objects.filter(username=username).first()
    record_access(
        user=None,
        action=AccessAction.SIGN_IN_FAILED,
        request=request,
        username=username,
        description=f"Sign-in failed for {username!r}"
        + (f" (user {user.pk})" if user is not None else " (no such user)"),
    )


def access_log_for(user: Any) -> QuerySet[AccessLog]:
    """Operators see every row; an organisation's admins see its rows, and the rows about its
    members that belong to no organisation (sign-ins) from while they were members: a former
    member's sign-ins then stay in view, later ones do not."""
    rows = AccessLog.objects.select_related("user", "organisation")
    if user.is_superuser:
        return rows
    administered = active_memberships(user, (Role.ADMIN,)).values("organisation_id")
    members = Membership.objects.filter(organisation__in=administered)
    while_member = members.filter(user=OuterRef("user"), created_at__lte=OuterRef("at")).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gte=OuterRef("at"))
    )
    names = get_user_model().objects.filter(pk__in=members.values("user_id")).values("username")
    return rows.filter(
        Q(organisation__in=administered)
        | Q(Exists(while_member), organisation__isnull=True)
        | Q(organisation__isnull=True, user__isnull=True, username__in=names)
    )


@admin.register(AccessLog)
class AccessLogAdmin(CountedOnceAdmin, ReadOnlyAdmin, NotFoundAdmin):
    """Who signed in, who failed to, and what data left the tracker: read-only, for operators
    and organisation admins."""

    list_display = ("at", "action", "username", "organisation", "description", "ip_address")
    list_filter = ("action", ("organisation", admin.RelatedOnlyFieldListFilter))
    search_fields = ("username", "description", "ip_address")
    date_hierarchy = "at"
    list_per_page = 100
    fields = (
        "at",
        "action",
        "user",
        "username",
        "organisation",
        "description",
        "ip_address",
        "user_agent",
    )
    readonly_fields = fields
    actions = ("lift_for_names", "lift_for_addresses")

    @admin.action(description="Lift sign-in lockout for these names (from these addresses)")
    def lift_for_names(self, request: HttpRequest, queryset: QuerySet[AccessLog]) -> None:
        pairs = queryset.filter(action__in=FAILURES).exclude(username="")
        self._lift(request, pairs.values_list("username", "ip_address").distinct())

    @admin.action(description="Lift sign-in lockout for these addresses (every name)")
    def lift_for_addresses(self, request: HttpRequest, queryset: QuerySet[AccessLog]) -> None:
        addresses = queryset.filter(action__in=FAILURES, ip_address__isnull=False)
        self._lift(request, [("", a) for a in addresses.values_list("ip_address", flat=True)])

    def _lift(self, request: HttpRequest, pairs: Any) -> None:
        lifted = []
        for username, address in sorted(set(pairs), key=lambda p: (p[0], p[1] or "")):
            who = f"{username or 'every name'} from {address or 'anywhere'}"
            try:
                lift_lockout(
                    actor=acting_user(request),
                    username=username,
                    ip_address=address,
                    request=request,
                )
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(request, f"{who}: {exc}", messages.ERROR)
            else:
                lifted.append(who)
        if lifted:
            self.message_user(request, f"Sign-in lockout lifted for {', '.join(lifted)}.")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        found = super().get_actions(request)
        if not request.user.is_superuser:
            found.pop("lift_for_addresses", None)  # operators only (signin.lift_lockout)
        return found

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessLog]:
        return access_log_for(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or has_role(request.user, (Role.ADMIN,))
