"""The outbox in the admin, read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from obligations.access.selectors import has_role, notifications_for
from obligations.adminkit import (
    CountedOnceAdmin,
    NotFoundAdmin,
    ReadOnlyAdmin,
    ScopedRelatedFilter,
    SortKeysFirstPaginator,
)
from obligations.reminders.models import Reminder


@admin.register(Reminder)
class ReminderAdmin(CountedOnceAdmin, ReadOnlyAdmin, NotFoundAdmin):
    """Each user's notifications; an organisation's managers and admins see every reminder
    sent in it, to whom, and why. Read-only: the sweep writes them."""

    list_display = ("created_at", "kind", "reason", "recipient", "status", "sent_at", "obligation")
    # When a reminder was made is a filter, not a date hierarchy: the hierarchy reads the
    # first and last dates and every day of all of a user's reminders on each page.
    list_filter = (
        "kind",
        "status",
        ("recipient", ScopedRelatedFilter),
        ("created_at", admin.DateFieldListFilter),
        ("deadline", admin.DateFieldListFilter),
    )
    list_select_related = ("recipient", "cycle__obligation__duty")
    search_fields = ("reason",)
    list_per_page = 100
    paginator = SortKeysFirstPaginator
    fields = ("created_at", "kind", "reason", "deadline", "recipient", "status", "sent_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return notifications_for(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or has_role(request.user)

    @admin.display(description="obligation")
    def obligation(self, obj: Reminder) -> str:
        obligation_id = obj.cycle.obligation_id
        url = reverse("admin:obligations_obligation_change", args=[obligation_id])
        return format_html('<a href="{}">{}</a>', url, obj.cycle.obligation.duty.code)
