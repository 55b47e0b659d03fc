"""Team chat webhooks in the admin, for each organisation's admins alone: the address is typed
in, never shown again (its host and last characters are); a signed webhook's signing secret
is shown once; every delivery, and why one failed, is listed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from obligations.access.models import Role
from obligations.access.selectors import has_role, scope, webhooks_for
from obligations.adminkit import NotFoundAdmin, ReadOnlyAdmin, acting_user
from obligations.reminders.endpoints import (
    SETTINGS,
    change_webhook,
    create_webhook,
    send_test_message,
)
from obligations.reminders.models import WebhookDelivery, WebhookEndpoint, WebhookStatus
from obligations.reminders.sealed import MAX_URL_LENGTH, validate_webhook_url


class WebhookForm(forms.ModelForm):  # type: ignore[type-arg]
    address = forms.CharField(
        label="Webhook address",
        max_length=MAX_URL_LENGTH,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "off", "size": 80}),
        help_text="The incoming-webhook address Slack or Teams gave you, or your receiver's. "
        "Stored encrypted and never shown again.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["organisation", "kind", "name", *SETTINGS[1:]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["address"].required = False
            self.fields["address"].label = "New webhook address"
            self.fields["address"].help_text = (
                "Empty: keep the stored one. It is never shown again, so to change it, type "
                "the new one in full."
            )

    def clean_address(self) -> str:
        url = str(self.cleaned_data.get("address") or "")
        if url:
            try:
                validate_webhook_url(url)
            except ValidationError as invalid:
                raise ValidationError(invalid.messages) from invalid
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(NotFoundAdmin):
    form = WebhookForm
    list_display = (
        "name",
        "organisation",
        "kind",
        "url_hint",
        "digests",
        "escalations",
        "notice_deadlines",
        "active",
        "failures",
        "created_by",
    )
    list_filter = ("kind", "active")
    list_select_related = ("organisation", "created_by")
    actions = ["test_message"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return webhooks_for(request.user).annotate(
            failed=Count("deliveries", filter=Q(deliveries__status=WebhookStatus.FAILED))
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["organisation", "kind", "name", "address", *SETTINGS[1:]]
        return [
            "organisation",
            "kind",
            "name",
            "url_hint",
            "address",
            *SETTINGS[1:],
            "created_by",
            "created_at",
            "changed_by",
            "changed_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return [
            "organisation",
            "kind",
            "url_hint",
            "created_by",
            "created_at",
            "changed_by",
            "changed_at",
        ]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "organisation":
            kwargs["queryset"] = scope(
                db_field.related_model.objects.all(), request.user, (Role.ADMIN,)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or has_role(request.user, (Role.ADMIN,))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # switched off, not deleted: its deliveries stay on record

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        values = {name: data[name] for name in SETTINGS}
        if change:
            change_webhook(actor=acting_user(request), endpoint=obj, url=data["address"], **values)
            return
        endpoint, secret = create_webhook(
            actor=acting_user(request),
            organisation=data["organisation"],
            kind=data["kind"],
            url=data["address"],
            **values,
        )
        obj.pk = endpoint.pk
        # For response_add alone: a message would carry it in a cookie or the session.
        request.signing_secret = secret  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None
    ) -> HttpResponse:
        secret = getattr(request, "signing_secret", "")
        if not secret:
            return super().response_add(request, obj, post_url_continue)
        context = {**self.admin_site.each_context(request), "endpoint": obj, "secret": secret}
        context["title"] = "Copy the signing secret"
        # The admin's own views are never cached (never_cache), this answer among them.
        return TemplateResponse(request, "admin/obligations/webhookendpoint/secret.html", context)

    @admin.display(description="failed deliveries")
    def failures(self, obj: Any) -> int:
        return int(obj.failed)

    @admin.action(description="Send a test message to the selected webhooks")
    def test_message(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        actor = acting_user(request)
        try:
            for endpoint in queryset:
                send_test_message(actor=actor, endpoint=endpoint)
        except PermissionDenied as refused:
            self.message_user(request, str(refused), messages.ERROR)
            return
        self.message_user(
            request,
            f"{queryset.count()} test message(s) queued: see the webhook deliveries for how "
            "each went.",
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin, NotFoundAdmin):
    """Every post to a team channel, and why one failed. Read-only: delivery writes them."""

    list_display = (
        "created_at",
        "endpoint",
        "kind",
        "reason",
        "status",
        "attempts",
        "last_error",
        "sent_at",
    )
    list_filter = ("status", "kind")
    list_select_related = ("endpoint",)
    list_per_page = 100
    fields = (
        "created_at",
        "endpoint",
        "kind",
        "reason",
        "deadline",
        "requested_by",
        "status",
        "attempts",
        "retry_at",
        "last_error",
        "sent_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return scope(WebhookDelivery.objects.all(), request.user, (Role.ADMIN,))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or has_role(request.user, (Role.ADMIN,))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)
