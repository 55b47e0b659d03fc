"""The obligations list's own filters: overdue, the dashboard's states, my work."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from obligations.dashboard.queries import buckets
from obligations.dates import london_today
from obligations.register.selectors import my_work_filters, register_state
from obligations.register.states import due_within, overdue


class OverdueFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "due"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("overdue", "Overdue"),
            ("7", "Due in the next 7 days"),
            ("30", "Due in the next 30 days"),
            ("90", "Due in the next 90 days"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        today = london_today()
        if self.value() == "overdue":
            return queryset.filter(overdue(today))
        if self.value() in {"7", "30", "90"}:
            return queryset.filter(due_within(today, int(self.value() or 0)))
        return queryset


class StateFilter(admin.SimpleListFilter):
    """The dashboard's four states, so that a figure's link lists exactly what it counted."""

    title = "state (as on the dashboard)"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("met", "Met"),
            ("overdue", "Overdue"),
            ("in_progress", "In progress, on time"),
            ("not_started", "Not started, on time"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        today = london_today()
        wanted = buckets(today).get(value)
        if wanted is None:
            raise IncorrectLookupParameters(f"Unknown state {value!r}.")
        return queryset.filter(
            pk__in=register_state(queryset.model.objects.all())
            .filter(wanted & Q(r_applicable=True))
            .values("pk")
        )


class MyWorkFilter(admin.SimpleListFilter):
    """The sections of "My work", so that each lists all of its obligations here."""

    title = "my work"
    parameter_name = "mine"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        sections = my_work_filters(request.user, london_today())
        return [(key, title) for key, (title, _) in sections.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        section = my_work_filters(request.user, london_today()).get(value)
        if section is None:
            raise IncorrectLookupParameters(f"Unknown section of my work {value!r}.")
        return queryset.filter(section[1])
