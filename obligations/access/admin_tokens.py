"""API tokens and calendar feeds in the admin: made by their holder, listed and revoked by
the organisation's admins, a key shown once."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from obligations.access.models import ApiToken, CalendarFeed
from obligations.access.selectors import api_tokens_for, has_role, scope
from obligations.access.tokens import (
    create_api_token,
    create_calendar_feed,
    revoke_api_token,
    revoke_calendar_feed,
)
from obligations.adminkit import NotFoundAdmin, acting_user
from obligations.providers.models import Service


class ApiTokenForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = ApiToken
        # No "user": the holder is whoever makes the token (services.create_api_token).
        fields = ["name", "read_only", "expires_at"]
        help_texts = {
            "read_only": "A read-only token can list, filter and export, never change.",
            "expires_at": "Empty: until revoked.",
        }


@admin.register(ApiToken)
class ApiTokenAdmin(NotFoundAdmin):
    form = ApiTokenForm
    list_display = (
        "name",
        "user",
        "prefix",
        "read_only",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("read_only", ("revoked_at", admin.EmptyFieldListFilter))
    readonly_fields = ("prefix", "created_by", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        return api_tokens_for(request.user).select_related("user")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ApiTokenForm.Meta.fields
        return ["user", "name", "prefix", "read_only", *self.readonly_fields[1:], "expires_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ["user", "name", "prefix", "read_only", "expires_at", *self.readonly_fields]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a token is made and revoked, never edited

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked tokens stay, so that who had access stays on record

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        token, key = create_api_token(
            actor=acting_user(request),
            name=form.cleaned_data["name"],
            read_only=form.cleaned_data["read_only"],
            expires_at=form.cleaned_data["expires_at"],
        )
        obj.pk = token.pk
        self.message_user(
            request,
            f"Token created. Copy the key now, it is not shown again: {key}  "
            f"(send it as the header 'Authorization: Token {key[:8]}…').",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = sum(
            revoke_api_token(actor=acting_user(request), token=token)
            for token in queryset.filter(revoked_at__isnull=True).select_related("user")
        )
        self.message_user(request, f"{count} token(s) revoked; they stop working at once.")


SHOWN_FIELDS = ("user", "service", "created_at", "last_used_at", "revoked_at")


@admin.register(CalendarFeed)
class CalendarFeedAdmin(NotFoundAdmin):
    list_display = ("__str__", "user", "service", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("user", "service")
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(user_id=request.user.pk)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Adding asks only which service (none: the user's own deadlines); the rest is set.
        return ("service",) if obj is None else SHOWN_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else SHOWN_FIELDS

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "service":
            kwargs["queryset"] = scope(Service.objects.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or has_role(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Adding is the only save: the service makes the feed, and its address is shown here,
        the one time it can be."""
        user = acting_user(request)
        feed, secret = create_calendar_feed(actor=user, user=user, service=obj.service)
        # The admin goes on to log and redirect to `obj`: make it the row the service saved.
        obj.pk, obj.user, obj.created_at = feed.pk, feed.user, feed.created_at
        url = settings.SITE_URL.rstrip("/") + reverse("calendar-feed", args=[secret])
        messages.success(
            request,
            format_html(
                "Subscribe to this address in your calendar application: <code>{}</code> "
                "Copy it now: it cannot be shown again. Keep it private, as anyone who has it "
                "can read these deadlines; if it leaks, revoke this feed and make another.",
                url,
            ),
        )

    @admin.action(description="Revoke selected feeds", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[CalendarFeed]) -> None:
        actor = acting_user(request)
        revoked = sum(
            revoke_calendar_feed(actor=actor, feed=feed)
            for feed in queryset.select_related("user", "service")
        )
        messages.success(request, f"Revoked {revoked} feed(s); their addresses no longer answer.")
