"""Reads about providers: qualifying revenue, the penalty cap, exposure."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce

from obligations.catalogue.selectors import catalogue_parameters
from obligations.notices.models import ENFORCEMENT_KINDS, NoticeStage, OfcomNotice, TechnologyNotice
from obligations.providers.models import Provider, RevenueKind, RevenuePeriod
from obligations.providers.penalties import PenaltyCap, Revenue, money, penalty_cap
from obligations.register.models import Obligation
from obligations.register.states import overdue

# Where `providers_with_exposure` puts each provider's revenue periods.
REVENUE_HISTORY = "revenue_history"


def as_revenue(period: RevenuePeriod) -> Revenue:
    return Revenue(
        start=period.start,
        end=period.end,
        amount=period.amount_gbp,
        complete=period.complete,
        basis=period.basis,
        accounting=period.kind == RevenueKind.ACCOUNTING,
        uk_referable=period.uk_referable_gbp,
    )


def provider_revenue(provider: Provider) -> list[Revenue]:
    """The provider's recorded revenue periods, newest first (the list
    `providers_with_exposure` prefetched, when it did)."""
    periods = getattr(provider, REVENUE_HISTORY, None)
    if periods is None:
        periods = provider.revenue_periods.all()
    return [as_revenue(p) for p in periods]


def provider_penalty_cap(
    provider: Provider, parameters: dict[str, Any] | None = None
) -> PenaltyCap:
    parameters = parameters or catalogue_parameters()
    return penalty_cap(
        provider_revenue(provider),
        no_accounting_period=provider.no_accounting_period,
        params=parameters["penalty"],
    )


def penalty_above_cap(notice: OfcomNotice) -> str:
    """Why Ofcom's recorded penalty exceeds the cap computed from the recorded revenue, or "".

    Ofcom's figure stands (it may hold revenue figures we do not, para 4(6)); this only flags
    it for a revenue check and an appeal decision.
    """
    single = notice.single_penalty_gbp or Decimal(0)
    daily = notice.daily_penalty_gbp or Decimal(0)
    if not single and not daily:
        return ""
    cap = provider_penalty_cap(notice.service.provider)
    if cap.amount is None:
        return ""
    if single > cap.amount:
        return (
            f"The single penalty {money(single)} is above the computed cap "
            f"{money(cap.amount)} ({cap.rule})."
        )
    if daily and single + daily > cap.amount:
        return (
            f"The single penalty and one day of the daily penalty "
            f"({money(single + daily)}) already exceed the computed cap "
            f"{money(cap.amount)}, which they share (Sch.13 para 4(7))."
        )
    return ""


OPEN_TECHNOLOGY_STAGES = (
    NoticeStage.WARNING,
    NoticeStage.REPRESENTED,
    NoticeStage.GIVEN,
    NoticeStage.IN_FORCE,
)


def count_of(qs: QuerySet[Any], link: str) -> Coalesce:
    """A correlated COUNT(*) of `qs` per outer row, joined on `link`: one subquery, no fan-out."""
    counted = qs.order_by().values(link).annotate(n=Count("pk")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def overdue_obligations(today: dt.date) -> QuerySet[Obligation]:
    """Applicable obligations whose open cycle's due date has passed ("overdue" is derived)."""
    return Obligation.objects.filter(overdue(today), applicable=True)


def providers_with_exposure(
    qs: QuerySet[Provider], today: dt.date, *, count_overdue: bool = True
) -> QuerySet[Provider]:
    """Providers with what their exposure needs: revenue prefetched, and counts of overdue
    obligations and open Ofcom notices as annotations (a constant number of queries).
    `count_overdue=False` leaves the overdue count to a caller that already has it (the
    dashboard counts overdue obligations for its own figures)."""
    counts = {
        "open_enforcement": count_of(
            OfcomNotice.objects.filter(
                service__provider=OuterRef("pk"),
                kind__in=ENFORCEMENT_KINDS,
                closed_on__isnull=True,
            ),
            "service__provider",
        ),
        "open_technology": count_of(
            TechnologyNotice.objects.filter(
                service__provider=OuterRef("pk"), stage__in=OPEN_TECHNOLOGY_STAGES
            ),
            "service__provider",
        ),
    }
    if count_overdue:
        counts["overdue_count"] = count_of(
            overdue_obligations(today).filter(provider=OuterRef("pk")), "provider"
        )
    # Prefetched into a plain list: through the related manager, Django cloned a queryset
    # for every provider (a third of the dashboard's exposure table at 143 providers).
    history = Prefetch(
        "revenue_periods",
        queryset=RevenuePeriod.objects.order_by("-end"),
        to_attr=REVENUE_HISTORY,
    )
    return qs.prefetch_related(history).annotate(**counts)


def exposure_reasons(provider: Any, overdue_count: int | None = None) -> list[str]:
    """Why an annotated provider's exposure is at risk; empty when it is not. The overdue
    count is the annotation's unless the caller counted it."""
    overdue = provider.overdue_count if overdue_count is None else overdue_count
    reasons = []
    if overdue:
        reasons.append(f"{overdue} overdue obligation(s)")
    if provider.open_enforcement:
        reasons.append(f"{provider.open_enforcement} open enforcement notice(s)")
    if provider.open_technology:
        reasons.append(f"{provider.open_technology} open Technology Notice(s)")
    return reasons
