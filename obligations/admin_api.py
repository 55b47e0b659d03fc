"""API tokens in the admin: each person makes their own here (the key is shown once, to
them); they, their organisations' admins and operators revoke them here; never edited."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from obligations import models as m
from obligations import selectors, services
from obligations.admin import NotFoundAdmin, acting_user


class ApiTokenForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = m.ApiToken
        # No "user": the holder is whoever makes the token (services.create_api_token).
        fields = ["name", "read_only", "expires_at"]
        help_texts = {
            "read_only": "A read-only token can list, filter and export, never change.",
            "expires_at": "Empty: until revoked.",
        }


@admin.register(m.ApiToken)
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[m.ApiToken]:
        return selectors.api_tokens_for(request.user).select_related("user")

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

    def save_model(self, request: HttpRequest, obj: m.ApiToken, form: Any, change: bool) -> None:
        token, key = services.create_api_token(
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
    def revoke(self, request: HttpRequest, queryset: QuerySet[m.ApiToken]) -> None:
        count = sum(
            services.revoke_api_token(actor=acting_user(request), token=token)
            for token in queryset.filter(revoked_at__isnull=True).select_related("user")
        )
        self.message_user(request, f"{count} token(s) revoked; they stop working at once.")
