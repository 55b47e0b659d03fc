"""Each user's calendar feeds: made here, shown once, revoked here. Writes go through the
services; nothing about a feed is edited, and none is deleted (revoking is the way)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from obligations import models as m
from obligations import selectors, services
from obligations.admin import NotFoundAdmin, acting_user

SHOWN_FIELDS = ("user", "service", "created_at", "last_used_at", "revoked_at")


@admin.register(m.CalendarFeed)
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
            kwargs["queryset"] = selectors.scope(m.Service.objects.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or selectors.has_role(request.user)

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
        feed, secret = services.create_calendar_feed(actor=user, user=user, service=obj.service)
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
    def revoke(self, request: HttpRequest, queryset: QuerySet[m.CalendarFeed]) -> None:
        actor = acting_user(request)
        revoked = sum(
            services.revoke_calendar_feed(actor=actor, feed=feed)
            for feed in queryset.select_related("user", "service")
        )
        messages.success(request, f"Revoked {revoked} feed(s); their addresses no longer answer.")
