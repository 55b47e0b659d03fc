"""Every figure on the managers' dashboard, from a fixed number of aggregate queries.

The page and `GET /api/v1/dashboard/` both call `summary`, so the two never disagree. Each
figure is computed over `selectors.register`, which makes "as of a past date" work the same
way as today. Lists are capped (the worst first) and say how many there are in all, so the
cost of the page does not grow with the register.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet, Sum

from obligations.access.selectors import AnyUser, scope
from obligations.assessments.selectors import (
    current_decisions_of,
    latest_levels_of,
    recommended_measures_of,
)
from obligations.catalogue.commencement import in_force_q
from obligations.catalogue.models import Duty
from obligations.catalogue.selectors import catalogue_parameters
from obligations.dashboard.actions import TREND_MONTHS
from obligations.dashboard.models import ComplianceCount, ComplianceFill
from obligations.dates import month_ends, parse_day
from obligations.notices.models import NoticeStage, OfcomNotice, TechnologyNotice
from obligations.providers.models import Provider, Service
from obligations.providers.selectors import (
    OPEN_TECHNOLOGY_STAGES,
    exposure_reasons,
    provider_penalty_cap,
    providers_with_exposure,
)
from obligations.register.models import Evidence, Obligation
from obligations.register.selectors import register, register_state, states_at
from obligations.register.states import (
    OPEN_STATUSES,
    UNDERWAY_STATUSES,
    CycleStatus,
    counted,
    is_overdue,
    overdue,
)

# Rows shown in a list before "and N more".
SHOWN = 25
UPCOMING_DAYS = 90
EXPIRING_DAYS = 30


@dataclass(frozen=True)
class Filters:
    organisation: int | None = None
    provider: int | None = None
    service: int | None = None
    owner: int | None = None
    as_of: dt.date | None = None

    def as_params(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, today: dt.date, uk: bool = True) -> Filters:
        """Filters from a query string; FilterError names each bad or unknown parameter.
        `uk`: as_of may be DD/MM/YYYY, as people type it (see dates.parse_day)."""
        errors: dict[str, str] = {}
        values: dict[str, Any] = {}
        for name in sorted(set(query) - FILTER_NAMES):
            errors[name] = f"Unknown parameter (known: {', '.join(sorted(FILTER_NAMES))})."
        for name in ("organisation", "provider", "service", "owner"):
            raw = query.get(name, "")
            if raw == "":
                continue
            if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
                errors[name] = "An ID: a whole number."
            else:
                values[name] = int(raw)
        raw = query.get("as_of", "")
        if raw:
            try:
                values["as_of"] = _past_day(parse_day(raw, uk=uk), today)
            except ValueError as refused:
                errors["as_of"] = str(refused)
        if errors:
            raise FilterError(errors)
        return cls(**values)


def _past_day(day: dt.date, today: dt.date) -> dt.date:
    if day > today:
        raise ValueError("The register's past, not its future.")
    if day < EARLIEST:
        raise ValueError(f"From {EARLIEST:%-d %B %Y} on: the Act is from 2023.")
    return day


class FilterError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


FILTER_NAMES = frozenset({"organisation", "provider", "service", "owner", "as_of"})
MAX_ID = 2**63 - 1
# The earliest as_of: long before the Act (2023), and far enough from year 1 that the
# 12-month trend can step back from it.
EARLIEST = dt.date(2000, 1, 1)


def percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(100 * part) / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def buckets(day: dt.date) -> dict[str, Q]:
    """The four exclusive states of an applicable obligation on `day`: met; overdue (open and
    past its due date); in progress (open, on time, being worked); not started."""
    # Spelt out rather than ~overdue: with no due date, SQL's NULL would put a continuous
    # duty in none of the four states.
    on_time = Q(r_due__isnull=True) | Q(r_due__gte=day)
    return {
        "met": Q(r_status=CycleStatus.MET),
        "overdue": overdue(day, status="r_status", due="r_due"),
        "in_progress": Q(r_status__in=UNDERWAY_STATUSES) & on_time,
        "not_started": Q(r_status=CycleStatus.NOT_STARTED) & on_time,
    }


def due_soon(day: dt.date) -> Q:
    """Open work due in the next UPCOMING_DAYS days, `day` and the last one included."""
    return Q(
        r_status__in=OPEN_STATUSES,
        r_due__gte=day,
        r_due__lte=day + dt.timedelta(days=UPCOMING_DAYS),
    )


def _grouped_counts(live: QuerySet[Any], day: dt.date, *by: str) -> list[dict[str, Any]]:
    """`live` rows counted by state per `by`, and those due soon. The four states are
    exclusive and cover every live row, so "in progress" is what the others leave: one
    filter fewer to test on every row (a fifth of the dashboard's largest query). Due soon
    is counted in the same pass: a query of its own read them all again (197 ms at 1M)."""
    states = {**buckets(day), "due_soon": due_soon(day)}
    # Each counts the (never null) provider, not the id: the id is not in the index the
    # counts are read from, and Django takes no filter on COUNT(*).
    counts = {
        name: Count("provider", filter=states[name])
        for name in ("met", "overdue", "not_started", "due_soon")
    }
    groups = list(live.values(*by).annotate(applicable=Count("*"), **counts).order_by())
    for g in groups:
        g["in_progress"] = g["applicable"] - g["met"] - g["overdue"] - g["not_started"]
    return groups


def _with_percent(row: dict[str, Any]) -> dict[str, Any]:
    row["percent_met"] = percent(row["met"], row["applicable"])
    return row


def narrow(
    qs: QuerySet[Any],
    f: Filters,
    *,
    to: str = "",
    organisation: str | None = None,
    provider: str | None = None,
    service: str | None = None,
) -> QuerySet[Any]:
    """`qs` limited by the organisation, provider and service filters; `to` is the path from
    the model to its obligation-like owner ("" for obligations, "cycle__obligation__" for
    evidence), and a model shaped otherwise names its own paths (a service is "pk")."""
    paths = {
        organisation or f"{to}provider__organisation_id": f.organisation,
        provider or f"{to}provider_id": f.provider,
        service or f"{to}service_id": f.service,
    }
    return qs.filter(**{path: value for path, value in paths.items() if value})


def scoped(user: AnyUser, f: Filters) -> QuerySet[Obligation]:
    return narrow(scope(Obligation.objects.all(), user), f)


def _live(table: QuerySet[Any]) -> QuerySet[Any]:
    """The register's rows that count: applicable, and not marked not applicable."""
    return table.filter(Q(r_applicable=True) & counted("r_status"))


def summary(
    user: AnyUser,
    f: Filters,
    *,
    today: dt.date,
    service_names: Mapping[int, str] | None = None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every figure of the dashboard. `service_names`: the names of at least the services
    in view, and `parameters` the catalogue's, when the caller has read them already (the
    page has, for its service filter and its risk levels' words)."""
    day = f.as_of or today

    def rows(table: QuerySet[Any]) -> QuerySet[Any]:
        qs = _live(table)
        return qs.filter(r_owner_id=f.owner) if f.owner else qs

    # Counted from the state alone; the lists read the whole register.
    state = rows(register_state(scoped(user, f), as_of=f.as_of))
    live = rows(register(scoped(user, f), today=day, as_of=f.as_of))
    # One grouped query gives every service's counts (provider-wide duties group under no
    # service); the totals are their sums, so the headline and the bars always agree.
    # Grouped by ids alone: joining names onto every row cost more than looking them up.
    groups = _grouped_counts(state, day, "provider_id", "service_id")
    # The list of upcoming work below is capped; this count is of them all.
    upcoming_total = sum(g.pop("due_soon") for g in groups)
    totals = _with_percent(
        {key: sum(g[key] for g in groups) for key in (*buckets(day), "applicable")}
    )
    names = _service_names(user, f) if service_names is None else service_names
    per_service = sorted(
        (g for g in groups if g["service_id"] is not None),
        key=lambda g: (-g["overdue"], names[g["service_id"]], g["service_id"]),
    )
    service_count = len(per_service)
    shown_services = [
        _with_percent({**row, "name": names[row["service_id"]]}) for row in per_service[:SHOWN]
    ]
    service_ids = [row["service_id"] for row in shown_services]
    # Duties of a provider as a whole (fees, notices) belong to no service: their own row, so
    # that each column of the table adds up to the headline.
    wide = [g for g in groups if g["service_id"] is None]
    provider_wide = (
        _with_percent({key: sum(g[key] for g in wide) for key in (*buckets(day), "applicable")})
        if wide
        else None
    )

    overdue_q = buckets(day)["overdue"]
    row_values = (
        "id",
        "r_due",
        "r_status",
        "r_owner",
        "duty__code",
        "duty__title",
        "service__name",
        "provider__name",
    )
    overdue = list(live.filter(overdue_q).order_by("r_due", "id").values(*row_values)[:SHOWN])
    for row in overdue:
        row["days_overdue"] = (day - row["r_due"]).days
    upcoming = list(
        live.filter(due_soon(day)).order_by("r_due", "id").values(*row_values)[: SHOWN * 2]
    )
    # Both the risk table and the undecided measures read the latest risk levels.
    # The catalogue's figures, read once for the three parts that need them.
    parameters = parameters or catalogue_parameters()
    levels = latest_levels_of(service_ids, parameters)
    heat = list(
        state.filter(service_id__in=service_ids).values(
            "service_id", "duty__code", "r_status", "r_due"
        )
    )
    # Listed on the register, undated, never overdue: counted so the headline says so.
    not_in_force = state.filter(duty__in=Duty.objects.exclude(in_force_q(day)).values("pk")).count()
    return {
        "day": day,
        "as_of": f.as_of,
        "filters": f.as_params(),
        "totals": totals,
        "not_in_force": not_in_force,
        "services": shown_services,
        "services_total": service_count,
        "provider_wide": provider_wide,
        "overdue": overdue,
        "upcoming": upcoming,
        "upcoming_total": upcoming_total,
        "upcoming_days": UPCOMING_DAYS,
        "heatmap": _heatmap(heat, shown_services, day),
        "notices": notices(user, f, day),
        "providers": exposure(user, f, day, _overdue_by_provider(user, f, day, groups), parameters),
        "risks": risk_levels(service_ids, names, levels),
        "undecided": undecided_measures(service_ids, names, day, levels, parameters),
        "expiring": expiring_evidence(user, f, day),
        "trend": trend(user, f, day, totals),
    }


def _heatmap(rows: list[dict[str, Any]], services: list[dict[str, Any]], day: dt.date) -> Any:
    cells: dict[int, dict[str, str]] = {s["service_id"]: {} for s in services}
    for row in rows:
        state = "overdue" if is_overdue(row["r_status"], row["r_due"], day) else row["r_status"]
        cells[row["service_id"]][row["duty__code"]] = state
    duties = sorted({code for by_duty in cells.values() for code in by_duty})
    return {
        "duties": duties,
        "rows": [
            {"service_id": s["service_id"], "name": s["name"], "cells": cells[s["service_id"]]}
            for s in services
        ],
    }


def notices(user: AnyUser, f: Filters, day: dt.date) -> list[dict[str, Any]]:
    """Open Ofcom notices with their next date: the earliest open date of the obligations the
    notice created. A Technology Notice in its representations window comes first."""
    open_links = Q(obligations__status__in=OPEN_STATUSES)
    rows: list[dict[str, Any]] = []
    technology = _notice_scope(TechnologyNotice.objects.all(), user, f).filter(
        stage__in=OPEN_TECHNOLOGY_STAGES
    )
    for notice in technology.select_related("service").annotate(
        next_date=Min("obligations__due_date", filter=open_links)
    ):
        window = (
            notice.stage == NoticeStage.WARNING
            and notice.representations_due is not None
            and notice.representations_due >= day
        )
        rows.append(
            {
                "kind": "technology",
                "label": f"Technology Notice (s.121): {notice.get_stage_display()}",
                "id": notice.pk,
                "service": notice.service.name,
                "reference": notice.ofcom_reference,
                "next_date": notice.next_date,
                "representations_window": window,
            }
        )
    ofcom = _notice_scope(OfcomNotice.objects.all(), user, f).filter(closed_on__isnull=True)
    for other in ofcom.select_related("service").annotate(
        next_date=Min("obligations__due_date", filter=open_links)
    ):
        rows.append(
            {
                "kind": "ofcom",
                "label": other.get_kind_display(),
                "id": other.pk,
                "service": other.service.name,
                "reference": other.ofcom_reference,
                "next_date": other.next_date,
                "representations_window": False,
            }
        )
    rows.sort(key=lambda r: (not r["representations_window"], r["next_date"] or dt.date.max))
    return rows


def _notice_scope(qs: QuerySet[Any], user: AnyUser, f: Filters) -> QuerySet[Any]:
    # A notice belongs to a service: filter it as its service's obligations would be.
    return narrow(scope(qs, user), f, to="service__", service="service_id")


def _service_names(user: AnyUser, f: Filters) -> dict[int, str]:
    services = narrow(scope(Service.objects.all(), user), f, service="pk")
    return dict(services.values_list("pk", "name"))


def _overdue_by_provider(
    user: AnyUser, f: Filters, day: dt.date, groups: list[dict[str, Any]]
) -> dict[int, int]:
    """Each provider's overdue obligations, all of them: exposure is the provider's whatever
    the page shows. Unless the page is narrowed to a service or an owner, its groups already
    hold every obligation of each provider shown, so their sums are the answer."""
    if not (f.service or f.owner):
        by_provider: dict[int, int] = {}
        for g in groups:
            by_provider[g["provider_id"]] = by_provider.get(g["provider_id"], 0) + g["overdue"]
        return by_provider
    everything = Filters(organisation=f.organisation, provider=f.provider)
    register = register_state(scoped(user, everything), as_of=f.as_of)
    if f.service:
        providers = Service.objects.filter(pk=f.service).values("provider_id")
        register = register.filter(provider_id__in=providers)
    rows = (
        _live(register)
        .filter(buckets(day)["overdue"])
        .values("provider_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {row["provider_id"]: row["n"] for row in rows}


def exposure(
    user: AnyUser,
    f: Filters,
    day: dt.date,
    overdue: dict[int, int],
    parameters: dict[str, Any],
) -> list[dict[str, Any]]:
    qs = narrow(
        scope(Provider.objects.all(), user),
        f,
        organisation="organisation_id",
        provider="pk",
        service="services",
    )
    rows = []
    providers = providers_with_exposure(qs, day, count_overdue=False)
    for provider in providers.order_by("name"):
        cap = provider_penalty_cap(provider, parameters)
        reasons = exposure_reasons(provider, overdue.get(provider.pk, 0))
        rows.append(
            {
                "id": provider.pk,
                "name": provider.name,
                "cap_gbp": cap.amount,
                "rule": cap.rule,
                "missing": cap.missing,
                "at_risk": bool(reasons),
                "reasons": reasons,
            }
        )
    return rows


Levels = dict[int, dict[str, dict[str, int]]]


def risk_levels(
    service_ids: list[int], names: Mapping[int, str], levels: Levels
) -> list[dict[str, Any]]:
    """Each shown service's risk level per harm kind, from its latest complete assessments."""
    return [
        {"service_id": sid, "service": names[sid], "family": family, "levels": by_harm}
        for sid in service_ids
        for family, by_harm in sorted(levels.get(sid, {}).items())
    ]


def undecided_measures(
    service_ids: list[int],
    names: Mapping[int, str],
    day: dt.date,
    levels: Levels,
    parameters: dict[str, Any],
) -> list[dict[str, Any]]:
    """Recommended Codes measures with no current decision, per shown service."""
    recommended = recommended_measures_of(service_ids, day, levels, parameters)
    decided = set(current_decisions_of(service_ids).values_list("service_id", "measure_id"))
    rows = []
    for sid in service_ids:
        missing = [
            r.code
            for r in recommended.get(sid, [])
            if r.recommended and (sid, r.measure["pk"]) not in decided
        ]
        if missing:
            rows.append(
                {"service_id": sid, "service": names[sid], "count": len(missing), "codes": missing}
            )
    return rows


def expiring_evidence(user: AnyUser, f: Filters, day: dt.date) -> dict[str, Any]:
    # The rows first, by id, and their details after: PostgreSQL misjudged the joins (a
    # cycle back to its obligation's current cycle; evidence not superseded) as one row each
    # and looped over every cycle or every service (170 ms to 1.5 s at 100,000). EXISTS on
    # the obligations' current cycles and NOT EXISTS are planned from the expiry index.
    in_view = scoped(user, f).filter(current_cycle_id=OuterRef("cycle_id"))
    soonest = (
        Evidence.objects.filter(
            Exists(in_view),
            purged_at__isnull=True,
            expires_on__gte=day,
            expires_on__lte=day + dt.timedelta(days=EXPIRING_DAYS),
        )
        .exclude(Exists(Evidence.objects.filter(supersedes=OuterRef("pk"))))
        .order_by("expires_on", "id")
        .values("pk")[: SHOWN + 1]
    )
    rows = list(
        Evidence.objects.filter(pk__in=soonest)
        .order_by("expires_on", "id")
        .values(
            "id",
            "title",
            "expires_on",
            obligation=F("cycle__obligation_id"),
            duty_code=F("cycle__obligation__duty__code"),
            service=F("cycle__obligation__service__name"),
        )
    )
    return {"rows": rows[:SHOWN], "more": len(rows) > SHOWN, "days": EXPIRING_DAYS}


def trend(user: AnyUser, f: Filters, day: dt.date, totals: dict[str, Any]) -> list[dict[str, Any]]:
    """Percentage met at each of the last 12 month ends; the last point is `day` itself,
    from the headline totals. Past month ends come from ComplianceCount rows, which the
    nightly task stores (a page only reads); a month end not stored yet, and an owner filter,
    which has no stored counts, are replayed from the events, all in one query."""
    past = month_ends(day, TREND_MONTHS)[:-1]
    counts: dict[dt.date, tuple[int, int]] = {}
    replay = past
    if not f.owner:
        stored = set(ComplianceFill.objects.filter(day__in=past).values_list("day", flat=True))
        replay = [end for end in past if end not in stored]
        rows = (
            narrow(scope(ComplianceCount.objects.filter(day__in=stored), user), f)
            .values("day")
            .annotate(met=Sum("met"), applicable=Sum("applicable"))
        )
        counts = {row["day"]: (row["met"], row["applicable"]) for row in rows}
    if replay:
        mine = scoped(user, f)
        if f.owner:
            mine = mine.filter(owner_id=f.owner)
        # One replay for all the month ends it needs (states_at takes them together).
        counts |= {end: both for (_, _, end), both in states_at(replay, mine).items()}
    points = []
    for end in past:
        met, applicable = counts.get(end, (0, 0))
        points.append(_point(end, met, applicable))
    points.append(_point(day, totals["met"], totals["applicable"]))
    return points


def _point(end: dt.date, met: int, applicable: int) -> dict[str, Any]:
    return {
        "month_end": end,
        "met": met,
        "applicable": applicable,
        "percent": percent(met, applicable),
    }
