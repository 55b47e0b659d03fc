"""The board report: one A4 page for an organisation (all its providers) or one provider.

The state of compliance, what is overdue, the deadlines coming, open Ofcom notices and the
penalty exposure, as of today or a past day. Every figure is the dashboard's, from the same
`summary` call, so the report and the dashboard never disagree. Each list shows its worst
few and says how many more there are, so the report stays one page however large the
organisation; the template keeps each row to one line for the same reason.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_GET

from obligations.access.models import AccessAction, Organisation
from obligations.access.selectors import scope, visible_organisations
from obligations.access.signin import record_access
from obligations.dashboard.charts import BUCKETS
from obligations.dashboard.queries import FilterError, Filters, summary
from obligations.dashboard.views import may_read_dashboard, refuse
from obligations.dates import london_today
from obligations.exports.pdf import pdf_filename, pdf_response, render_pdf
from obligations.providers.models import Provider
from obligations.providers.penalties import money

TEMPLATE = "obligations/board_report.html"
PARAMETERS = frozenset({"organisation", "provider", "as_of"})
# Rows each list shows before "and N more": what fits one page with the rest.
SHOWN = {"services": 5, "overdue": 6, "upcoming": 6, "notices": 4, "providers": 4}


@require_GET
@login_required
def board_report(request: HttpRequest) -> HttpResponse:
    """`?organisation=<id>` or `?provider=<id>` (neither: the one organisation the user
    belongs to), and `as_of=YYYY-MM-DD` for a past day. Whoever may read the dashboard may
    read this; another organisation's provider is a 404 like one that does not exist."""
    if not may_read_dashboard(request):
        return refuse(request, 403, {"access": "You are not a member of any organisation."})
    unknown = sorted(set(request.GET) - PARAMETERS)
    if unknown:
        known = ", ".join(sorted(PARAMETERS))
        return refuse(
            request, 400, {name: f"Unknown parameter (known: {known})." for name in unknown}
        )
    today = london_today()
    try:
        filters = Filters.from_query(request.GET, today=today)
    except FilterError as exc:
        return refuse(request, 400, exc.errors)
    subject = _subject(request, filters)
    if subject is None:
        return refuse(
            request,
            400,
            {"organisation": "You see several organisations: choose one, or a provider."},
        )
    if isinstance(subject, Provider):
        filters = Filters(provider=subject.pk, as_of=filters.as_of)
        organisation_id = subject.organisation_id
    else:
        filters = Filters(organisation=subject.pk, as_of=filters.as_of)
        organisation_id = subject.pk
    found = summary(request.user, filters, today=today)
    context = report_context(found, subject)
    name = pdf_filename("board-report", subject.name, found["day"].isoformat())
    pdf = render_pdf(TEMPLATE, context, request)
    record_access(
        user=request.user,
        action=AccessAction.EXPORT,
        request=request,
        organisation_ids=[organisation_id],
        description=f"{name} ({context['kind']}: {subject.name})",
    )
    return pdf_response(pdf, name)


def _subject(request: HttpRequest, filters: Filters) -> Provider | Organisation | None:
    """The provider or organisation asked for, among those the user may see."""
    organisations = visible_organisations(request.user)
    if filters.provider is not None:
        providers = scope(Provider.objects.select_related("organisation"), request.user)
        if filters.organisation is not None:
            providers = providers.filter(organisation_id=filters.organisation)
        return get_object_or_404(providers, pk=filters.provider)
    if filters.organisation is not None:
        return get_object_or_404(organisations, pk=filters.organisation)
    only = list(organisations[:2])
    return only[0] if len(only) == 1 else None


def report_context(found: dict[str, Any], subject: Model) -> dict[str, Any]:
    """The template's figures: the summary's, each list cut to what fits and counted."""
    totals = found["totals"]
    providers = sorted(
        (
            {**p, "cap": money(p["cap_gbp"]) if p["cap_gbp"] is not None else None}
            for p in found["providers"]
        ),
        # The providers at risk first, the largest maximum penalty first among them.
        key=lambda p: (not p["at_risk"], -(p["cap_gbp"] or 0), p["name"]),
    )
    return {
        "subject": subject,
        "kind": "provider" if isinstance(subject, Provider) else "organisation",
        "s": found,
        "totals": totals,
        "states": [
            {"key": key, "count": totals[key], "label": look.label, "colour": look.colour}
            for key, look in BUCKETS.items()
        ],
        "services": _cut(
            [{**row, "counts": [row[key] for key in BUCKETS]} for row in found["services"]],
            found["services_total"],
            "services",
        ),
        "overdue": _cut(found["overdue"], totals["overdue"], "overdue"),
        "upcoming": _cut(
            [{**row, "days_left": (row["r_due"] - found["day"]).days} for row in found["upcoming"]],
            found["upcoming_total"],
            "upcoming",
        ),
        "notices": _cut(found["notices"], len(found["notices"]), "notices"),
        "providers": _cut(providers, len(providers), "providers"),
        "at_risk": sum(1 for p in providers if p["at_risk"]),
        "generated": timezone.localtime(),
        "pdf_title": f"Board report: {subject}",
    }


def _cut(rows: list[dict[str, Any]], total: int, name: str) -> dict[str, Any]:
    shown = rows[: SHOWN[name]]
    return {"rows": shown, "total": total, "more": max(total - len(shown), 0)}
