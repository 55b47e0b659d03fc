"""The managers' dashboards: the organisation's, and one service's.

Every figure comes from `queries.summary` (the API's dashboard calls the same function, so
the two agree); this module reads the filters, checks them against what the user may see,
and hands the figures to the template with their drill-down links and charts.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from obligations.access.selectors import active_memberships, scope, visible_organisations
from obligations.adminkit import colleagues
from obligations.catalogue.models import HarmKind
from obligations.catalogue.selectors import catalogue_parameters
from obligations.dashboard.charts import (
    BUCKETS,
    admin_link,
    figures,
    filter_params,
    heatmap_grid,
    heatmap_legend,
    risk_tables,
    stacked_bar,
    state_links,
    swatch,
    timeline,
    trend_chart,
)
from obligations.dashboard.queries import FilterError, Filters, summary
from obligations.dates import london_today
from obligations.providers.models import Provider, Service
from obligations.providers.penalties import money

TEMPLATE = "obligations/dashboard/dashboard.html"
REFUSED = "obligations/dashboard/refused.html"


@require_GET
@login_required
def organisation_dashboard(request: HttpRequest) -> HttpResponse:
    return dashboard(request, service_pk=None)


@require_GET
@login_required
def service_dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    return dashboard(request, service_pk=pk)


def dashboard(request: HttpRequest, service_pk: int | None) -> HttpResponse:
    """The figures for all the user can see, or for one service of theirs. A user who belongs
    nowhere is refused before any service is looked up, so another organisation's service is
    a 404 like one that does not exist."""
    if not may_read_dashboard(request):
        return refuse(request, 403, {"access": "You are not a member of any organisation."})
    service = None
    if service_pk is not None:
        service = get_object_or_404(
            scope(Service.objects.select_related("provider"), request.user),
            pk=service_pk,
        )
    today = london_today()
    try:
        filters = Filters.from_query(request.GET, today=today)
    except FilterError as exc:
        return refuse(request, 400, exc.errors)
    if service is not None:
        filters = dataclasses.replace(filters, service=service.pk)
    choices = _choices(request)
    unknown = {
        name: f"No {name} {value} among those you can see."
        for name, value in dataclasses.asdict(filters).items()
        if name in choices and value is not None and value not in choices[name]
    }
    if unknown:
        return refuse(request, 400, unknown)

    # The service filter's choices are every service the user may see: the names the
    # figures need, read once; so are the catalogue's figures.
    parameters = catalogue_parameters()
    found = summary(
        request.user,
        filters,
        today=today,
        service_names=choices["service"],
        parameters=parameters,
    )
    levels = parameters["assessment"]["levels"]
    harm_labels = dict(HarmKind.objects.values_list("code", "label"))
    links = state_links(filters)
    context = {
        "service": service,
        "s": found,
        "today": today,
        "form": _form(choices, filters, service),
        "links": links,
        "totals": figures(found["totals"], links),
        "legend": [(BUCKETS[key], swatch(key)) for key in BUCKETS],
        "services": [_service_row(row, filters) for row in found["services"]],
        "provider_wide": _provider_wide_row(found["provider_wide"], filters),
        "upcoming_link": admin_link(
            **filter_params(filters, applicable__exact=1, due=found["upcoming_days"])
        ),
        "timeline": timeline(found["upcoming"], found["day"], found["upcoming_days"]),
        "providers": [
            {**p, "cap": money(p["cap_gbp"]) if p["cap_gbp"] is not None else None}
            for p in found["providers"]
        ],
        "heatmap": heatmap_grid(found["heatmap"]),
        "heatmap_legend": heatmap_legend(),
        "risk_tables": risk_tables(found["risks"], levels, harm_labels),
        "levels": levels,
        "trend": trend_chart(found["trend"]),
        "generated": timezone.localtime(),
        "board_report": _board_report_link(filters, service, choices["organisation"]),
    }
    return render(request, TEMPLATE, context)


def may_read_dashboard(request: HttpRequest) -> bool:
    """Any member of an organisation may look (managers above all); operators see all."""
    user = request.user
    return bool(user.is_superuser) or active_memberships(user).exists()


def refuse(request: HttpRequest, status: int, errors: Mapping[str, str]) -> HttpResponse:
    """A 4xx page that says what was wrong with the request, in words."""
    return render(request, REFUSED, {"status": status, "errors": errors}, status=status)


def _board_report_link(
    filters: Filters, service: Service | None, organisations: Mapping[int, str]
) -> str | None:
    """The board report of what is in view: the service's provider, the chosen provider or
    organisation, or the user's one organisation (one who sees several chooses first)."""
    params: dict[str, object]
    if service is not None:
        params = {"provider": service.provider_id}
    elif filters.provider is not None:
        params = {"provider": filters.provider}
    elif filters.organisation is not None:
        params = {"organisation": filters.organisation}
    elif len(organisations) == 1:
        params = {}
    else:
        return None
    if filters.as_of is not None:
        params["as_of"] = filters.as_of.isoformat()
    query = f"?{urlencode(params)}" if params else ""
    return f"{reverse('dashboard:board-report')}{query}"


def _choices(request: HttpRequest) -> dict[str, dict[int, str]]:
    """What each filter may name: only what the user can see."""
    user = request.user
    providers: QuerySet[Provider] = scope(Provider.objects.all(), user)
    services: QuerySet[Service] = scope(Service.objects.all(), user)
    return {
        "organisation": dict(
            visible_organisations(user).order_by("name").values_list("pk", "name")
        ),
        "provider": dict(providers.order_by("name").values_list("pk", "name")),
        "service": dict(services.order_by("name").values_list("pk", "name")),
        "owner": dict(colleagues(request).values_list("pk", "username")),
    }


def _form(
    choices: Mapping[str, Mapping[int, str]],
    filters: Filters,
    service: Service | None,
) -> list[dict[str, Any]]:
    """The filter selects, each option marked if chosen; a service's page fixes the service
    (and with it the organisation and provider), so it offers only the owner."""
    names = ("owner",) if service is not None else ("organisation", "provider", "service", "owner")
    return [
        {
            "name": name,
            # Built here, not in a template loop: a large register has thousands of services,
            # and the template engine (or even format_html) took longer over their options
            # than the page's queries. The ids are ints; every label is escaped.
            "options": mark_safe(
                "".join(
                    f'<option value="{pk}"{" selected" if pk == getattr(filters, name) else ""}>'
                    f"{html.escape(label)}</option>"
                    for pk, label in choices[name].items()
                )
            ),
        }
        for name in names
    ]


def _service_row(row: Mapping[str, Any], filters: Filters) -> dict[str, Any]:
    return _table_row(row, state_links(filters, service__id__exact=row["service_id"]))


def _provider_wide_row(row: Mapping[str, Any] | None, filters: Filters) -> dict[str, Any] | None:
    """The duties of providers as a whole (fees, notices), linked to exactly those."""
    if row is None:
        return None
    # The bar's element ids are made from the row's service id: this row's is a word.
    wide = {**row, "service_id": "provider-wide", "name": "Provider-wide duties"}
    return _table_row(wide, state_links(filters, service__isnull="True"))


def _table_row(row: Mapping[str, Any], links: Mapping[str, str]) -> dict[str, Any]:
    return {
        **row,
        "figures": figures(row, links),
        "applicable_link": links["applicable"],
        "bar": stacked_bar(row),
    }
