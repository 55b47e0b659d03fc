"""Filters by organisation, provider and service that stay small however large the register.

Past a threshold of choices in the user's organisations, the sidebar holds a search box and
the one chosen rather than every name: at a million obligations it listed an organisation's
23,810 services and 1,191 providers, 380 ms of Python for each page of the register. The box
is a plain GET form (the list narrows to the names containing what was typed, and the sidebar
offers the first matches to pick one); with scripts on, filter_search.js offers matches as
the user types, from the tenant-scoped JSON endpoint here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import build_q_object_from_lookup_parameters, get_fields_from_path
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, JsonResponse, QueryDict
from django.urls import path, reverse

from obligations.adminkit import NAMED, ScopedRelatedFilter, visible_named
from obligations.inputs import CONTROL_CHARACTERS

# More choices than this in the user's organisations and the filter becomes a search box.
SEARCH_THRESHOLD = 50
# Matches offered at a time, in the sidebar and as the user types.
MATCHES_SHOWN = 20
# The names' column width: a longer text is part of no name.
NAME_LENGTH = 200


def name_term(typed: str) -> str | None:
    """What to look for in names: the text without its surrounding spaces; None when no name
    could contain it (longer than a name, or holding a control character, which names never
    hold and which PostgreSQL refuses in a query when it is NUL)."""
    term = typed.strip()
    if len(term) > NAME_LENGTH or CONTROL_CHARACTERS.search(term):
        return None
    return term


def _without(query_string: str, name: str) -> str:
    params = QueryDict(query_string.removeprefix("?"), mutable=True)
    params.pop(name, None)
    return f"?{params.urlencode()}"


class SearchableRelatedFilter(ScopedRelatedFilter):
    """ScopedRelatedFilter, searched by name where the user's organisations hold more than
    SEARCH_THRESHOLD rows of the related model (one of adminkit's NAMED). The chosen row is
    still `<field>__id__exact` (the dashboard's links use it); what was typed is
    `<field>_name`."""

    template = "admin/obligations/search_filter.html"

    def __init__(
        self,
        field: Any,
        request: HttpRequest,
        params: Any,  # Django's: each name's list of values
        model: Any,
        model_admin: Any,
        field_path: str,
    ) -> None:
        if field.remote_field.model not in NAMED:
            raise ImproperlyConfigured(f"{field_path}: only rows with names are searched by name.")
        # Set before Django's __init__, which reads expected_parameters() and the choices.
        self.search_kwarg = f"{field_path}_name"
        self.typed = (params.get(self.search_kwarg) or [""])[-1]
        self.term = name_term(self.typed)
        self.searching = False
        self.note = ""
        self.kept: list[tuple[str, str]] = []
        opts = model._meta
        self.source_url = reverse(
            f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_filter_choices",
            args=[field_path],
        )
        super().__init__(field, request, params, model, model_admin, field_path)

    def expected_parameters(self) -> list[str | None]:
        return [*super().expected_parameters(), self.search_kwarg]

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        named = visible_named(
            field.remote_field.model, request, model_admin.admin_site
        ).values_list("pk", "name")
        # Below the threshold, the whole list in the one query it always took.
        first = list(named[: SEARCH_THRESHOLD + 1])
        if len(first) <= SEARCH_THRESHOLD:
            return first
        self.searching = True
        # Ids as a key column holds them (under 2**63); Django refuses the rest as it filters.
        chosen = [
            int(v)
            for v in (self.lookup_val or [])[:MATCHES_SHOWN]
            if v.isascii() and v.isdigit() and len(v) < 19
        ]
        choices = list(named.filter(pk__in=chosen)) if chosen else []
        if self.term is None:
            self.note = "No name contains that: a name is one line of at most 200 characters."
        elif self.term:
            found = list(
                named.filter(name__icontains=self.term).exclude(pk__in=chosen)[: MATCHES_SHOWN + 1]
            )
            choices += found[:MATCHES_SHOWN]
            if len(found) > MATCHES_SHOWN:
                self.note = (
                    f"The first {MATCHES_SHOWN} names containing “{self.term}” are below: "
                    "type more of the name to find others."
                )
            elif found:
                self.note = (
                    f"Names containing “{self.term}”: pick one to list its obligations alone."
                )
            elif not chosen:
                self.note = f"No {self.title} name contains “{self.term}”."
        return choices

    def has_output(self) -> bool:
        return self.searching or super().has_output()

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        exact: Any = {k: v for k, v in self.used_parameters.items() if k != self.search_kwarg}
        try:
            queryset = queryset.filter(build_q_object_from_lookup_parameters(exact))
        except (ValueError, ValidationError) as refused:
            raise IncorrectLookupParameters(refused) from refused
        if self.term is None:
            return queryset.none()
        if not self.term:
            return queryset
        # By the ids of the matching rows, as the register's search looks in related tables.
        related = self.field.related_model._default_manager  # type: ignore[union-attr]
        matching = related.filter(name__icontains=self.term).values("pk")
        return queryset.filter(**{f"{self.field_path}__in": matching})

    def choices(self, changelist: Any) -> Any:
        # The search form carries the list's other filters, order and search, as the admin's
        # own search form does (Django lists the choices before it renders the template).
        mine = {self.lookup_kwarg, self.lookup_kwarg_isnull, self.search_kwarg}
        self.kept = [
            (name, value)
            for name, values in changelist.filter_params.items()
            if name not in mine
            for value in values
        ]
        for index, choice in enumerate(super().choices(changelist)):
            # Each choice replaces what was typed; "All" is not chosen while it narrows.
            choice["query_string"] = _without(choice["query_string"], self.search_kwarg)
            if index == 0:
                choice["selected"] = choice["selected"] and not self.typed.strip()
            yield choice


class FilterChoicesAdmin(admin.ModelAdmin):
    """The JSON that the search boxes of the changelist's SearchableRelatedFilters ask for as
    the user types: the first names containing `term` among the rows the user may see."""

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(js=["obligations/filter_search.js"])

    def get_urls(self) -> list[Any]:
        opts = self.opts
        return [
            path(
                "choices/<str:field_path>/",
                self.admin_site.admin_view(self.filter_choices_view),
                name=f"{opts.app_label}_{opts.model_name}_filter_choices",
            ),
            *super().get_urls(),
        ]

    def filter_choices_view(self, request: HttpRequest, field_path: str) -> JsonResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        searchable = {
            entry[0]
            for entry in self.list_filter
            if isinstance(entry, tuple) and issubclass(entry[1], SearchableRelatedFilter)
        }
        if field_path not in searchable:
            raise Http404("No such filter.")
        term = name_term(request.GET.get("term", ""))
        if not term:
            return JsonResponse({"results": [], "more": False})
        related = get_fields_from_path(self.model, field_path)[-1].related_model
        found = visible_named(related, request, self.admin_site).filter(name__icontains=term)
        rows = list(found.values_list("pk", "name")[: MATCHES_SHOWN + 1])
        return JsonResponse(
            {
                "results": [{"id": pk, "text": name} for pk, name in rows[:MATCHES_SHOWN]],
                "more": len(rows) > MATCHES_SHOWN,
            }
        )
