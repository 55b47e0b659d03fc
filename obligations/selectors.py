"""Every read that lists, counts or scopes. Admin, commands and (later) the API share these.

`scope` is the one place that decides which rows a user may see: a subquery on
the user's active memberships, never a Python list of ids.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, IntegerField, Model, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from obligations import models as m
from obligations import penalties
from obligations.catalogue import Catalogue, Profile

# How each tenant-owned model reaches its organisation.
ORGANISATION_PATHS: dict[type[Model], str] = {
    m.Organisation: "pk",
    m.Membership: "organisation",
    m.Provider: "organisation",
    m.RevenuePeriod: "provider__organisation",
    m.Service: "provider__organisation",
    m.SignificantChange: "service__provider__organisation",
    m.Obligation: "provider__organisation",
    m.ObligationCycle: "obligation__provider__organisation",
    m.Event: "obligation__provider__organisation",
    m.Evidence: "cycle__obligation__provider__organisation",
    m.TechnologyNotice: "service__provider__organisation",
    m.OfcomNotice: "service__provider__organisation",
    m.LeadTime: "organisation",
    m.Reminder: "cycle__obligation__provider__organisation",
}

User = AbstractBaseUser | AnonymousUser
# Who may approve an obligation's cycle (four eyes still applies to each of them).
REVIEWER_ROLES = (m.Role.ADMIN, m.Role.COMPLIANCE)
M = TypeVar("M", bound=Model)


def active_memberships(user: User, roles: tuple[str, ...] | None = None) -> QuerySet[m.Membership]:
    if not user.is_authenticated:
        return m.Membership.objects.none()
    qs = m.Membership.objects.filter(user_id=user.pk).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )
    if roles is not None:
        qs = qs.filter(role__in=roles)
    return qs


def active_memberships_of(organisation_id: int) -> QuerySet[m.Membership]:
    """The organisation's memberships that have not expired."""
    return m.Membership.objects.filter(organisation_id=organisation_id).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )


def scope(qs: QuerySet[M], user: User, roles: tuple[str, ...] | None = None) -> QuerySet[M]:
    """Rows of `qs` that belong to organisations where `user` holds one of `roles`.

    Superusers (the installation's operators) see every organisation.
    """
    path = ORGANISATION_PATHS[qs.model]
    if getattr(user, "is_superuser", False) and user.is_active:
        return qs
    organisations = active_memberships(user, roles).values("organisation_id")
    return qs.filter(**{f"{path}__in": organisations})


def visible_organisations(
    user: User, roles: tuple[str, ...] | None = None
) -> QuerySet[m.Organisation]:
    return scope(m.Organisation.objects.all(), user, roles)


def notifications_for(user: User) -> QuerySet[m.Reminder]:
    """A user's own notifications, plus every reminder of the organisations they oversee."""
    visible = scope(m.Reminder.objects.all(), user)
    if getattr(user, "is_superuser", False):
        return visible
    overseen = active_memberships(user, (m.Role.ADMIN, m.Role.MANAGER)).values("organisation_id")
    return visible.filter(
        Q(recipient_id=user.pk) | Q(cycle__obligation__provider__organisation__in=overseen)
    )


def roles_by_organisation(user: User) -> dict[int, str]:
    """The user's active role in each organisation, read once per user object.

    The admin asks permission questions dozens of times per page; `request.user` lives for one
    request, so caching on it keeps a page's query count small without going stale.
    """
    if not user.is_authenticated:
        return {}
    cached: dict[int, str] | None = getattr(user, "_tracker_roles", None)
    if cached is None:
        cached = dict(active_memberships(user).values_list("organisation_id", "role"))
        user._tracker_roles = cached  # type: ignore[union-attr,attr-defined]
    return cached


def has_role(
    user: User, roles: tuple[str, ...] | None = None, organisation_id: int | None = None
) -> bool:
    """Whether the user holds one of `roles` (any role if None), in one organisation or any."""
    held = roles_by_organisation(user)
    if organisation_id is not None:
        held = {organisation_id: held[organisation_id]} if organisation_id in held else {}
    return any(roles is None or role in roles for role in held.values())


def can_edit(user: User, organisation_id: int | None = None) -> bool:
    """Whether the user may change register data (of one organisation, or of any)."""
    if getattr(user, "is_superuser", False):
        return True
    return has_role(user, (m.Role.ADMIN, m.Role.COMPLIANCE), organisation_id)


def organisation_of(obj: Model) -> int:
    """The organisation id a tenant-owned object belongs to."""
    path = ORGANISATION_PATHS[type(obj)]
    if path == "pk":
        return int(obj.pk)
    *hops, last = path.split("__")
    value: object = obj
    for part in hops:
        value = getattr(value, part)
    # The last hop's id column, so that the organisation row itself is never fetched.
    return int(getattr(value, f"{last}_id"))


def obligations_for_list(user: User) -> QuerySet[m.Obligation]:
    """The obligations changelist: one query however many rows."""
    return scope(m.Obligation.objects.all(), user).select_related(
        "provider", "service", "duty", "owner", "current_cycle"
    )


def service_profile(service: m.Service, *, today: dt.date | None = None) -> Profile:
    """The engine's view of a saved service (two queries for its M2M fields)."""
    revenue = (
        m.RevenuePeriod.objects.filter(provider_id=service.provider_id, complete=True)
        .order_by("-end")
        .values_list("amount_gbp", flat=True)
        .first()
    )
    return Profile(
        name=service.name,
        user_to_user=service.user_to_user,
        search=service.search,
        provider_pornography=service.provider_pornography,
        categories=frozenset(service.categories.values_list("code", flat=True)),
        uk_monthly_users=service.uk_monthly_users,
        children_likely_to_access=service.children_likely_to_access,
        features=frozenset(service.features.values_list("code", flat=True)),
        launch_date=service.launch_date,
        exemption=service.exemption.code if service.exemption_id else None,  # type: ignore[union-attr]
        qualifying_worldwide_revenue=Decimal(revenue) if revenue is not None else None,
    )


def loaded_catalogue() -> Catalogue:
    """The catalogue as loaded in the database (retired entries left out)."""
    latest = m.CatalogueVersion.objects.order_by("-loaded_at", "-pk").first()
    if latest is None:
        raise m.CatalogueVersion.DoesNotExist(
            "No catalogue is loaded: run `python manage.py load_catalogue`."
        )
    return Catalogue(
        version=latest.version,
        published=latest.published,
        sha256=latest.sha256,
        features=[
            {"code": f.code, "label": f.label, "implies": f.implies}
            for f in m.Feature.objects.filter(retired_at__isnull=True)
        ],
        categories=[
            {"code": c.code, "label": c.label, "likely_if": c.likely_if, "supersedes": c.supersedes}
            for c in m.RegisterCategory.objects.all()
        ],
        exemptions=[
            {"code": e.code, "label": e.label, "paragraph": e.paragraph}
            for e in m.Exemption.objects.all()
        ],
        duties=[
            {
                "code": d.code,
                "section": d.section,
                "title": d.title,
                "scope": d.scope,
                "applies": d.applies,
                "deadline": d.deadline,
                "pk": d.pk,
            }
            for d in m.Duty.objects.filter(retired_at__isnull=True)
        ],
        parameters=latest.parameters,
        notice_powers=latest.notice_powers,
    )


def evidence_for(obligation: m.Obligation) -> QuerySet[m.Evidence]:
    """Every cycle's evidence of an obligation, newest first, in one query."""
    return (
        m.Evidence.objects.filter(cycle__obligation=obligation)
        .select_related("cycle", "uploaded_by", "purged_by", "superseded_by")
        .order_by("-uploaded_at")
    )


def my_work(user: User, today: dt.date) -> list[tuple[str, QuerySet[m.Obligation]]]:
    """The morning view: mine overdue, mine due in 30 days, mine open, awaiting my review."""
    base = (
        obligations_for_list(user)
        .filter(applicable=True)
        .exclude(current_cycle__status__in=m.CLOSED_STATUSES)
    )
    mine = base.filter(owner_id=user.pk)
    horizon = today + dt.timedelta(days=30)
    review = (
        base.filter(current_cycle__status=m.CycleStatus.READY_FOR_REVIEW)
        .exclude(owner_id=user.pk)
        .exclude(current_cycle__submitted_by_id=user.pk)
    )
    order = ("current_cycle__due_date", "pk")
    return [
        ("Overdue", mine.filter(current_cycle__due_date__lt=today).order_by(*order)),
        (
            "Due in the next 30 days",
            mine.filter(current_cycle__due_date__range=(today, horizon)).order_by(*order),
        ),
        ("Waiting for my review", review.order_by(*order)),
        ("All my open obligations", mine.order_by(*order)),
    ]


# --- Money: the penalty cap and exposure ----------------------------------


def catalogue_parameters() -> dict[str, Any]:
    """The figures of the loaded catalogue (penalty cap, fees), with their sources."""
    latest = m.CatalogueVersion.objects.order_by("-loaded_at", "-pk").values("parameters").first()
    if latest is None:
        raise m.CatalogueVersion.DoesNotExist(
            "No catalogue is loaded: run `python manage.py load_catalogue`."
        )
    return dict(latest["parameters"])


def as_revenue(period: m.RevenuePeriod) -> penalties.Revenue:
    return penalties.Revenue(
        start=period.start,
        end=period.end,
        amount=period.amount_gbp,
        complete=period.complete,
        basis=period.basis,
        accounting=period.kind == m.RevenueKind.ACCOUNTING,
        uk_referable=period.uk_referable_gbp,
    )


def provider_revenue(provider: m.Provider) -> list[penalties.Revenue]:
    """The provider's recorded revenue periods (uses a prefetched list when there is one)."""
    return [as_revenue(p) for p in provider.revenue_periods.all()]


def provider_penalty_cap(
    provider: m.Provider, parameters: dict[str, Any] | None = None
) -> penalties.PenaltyCap:
    parameters = parameters or catalogue_parameters()
    return penalties.penalty_cap(
        provider_revenue(provider),
        no_accounting_period=provider.no_accounting_period,
        params=parameters["penalty"],
    )


def penalty_above_cap(notice: m.OfcomNotice) -> str:
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
            f"The single penalty {penalties.money(single)} is above the computed cap "
            f"{penalties.money(cap.amount)} ({cap.rule})."
        )
    if daily and single + daily > cap.amount:
        return (
            f"The single penalty and one day of the daily penalty "
            f"({penalties.money(single + daily)}) already exceed the computed cap "
            f"{penalties.money(cap.amount)}, which they share (Sch.13 para 4(7))."
        )
    return ""


OPEN_TECHNOLOGY_STAGES = (
    m.NoticeStage.WARNING,
    m.NoticeStage.REPRESENTED,
    m.NoticeStage.GIVEN,
    m.NoticeStage.IN_FORCE,
)


def count_of(qs: QuerySet[Any], link: str) -> Coalesce:
    """A correlated COUNT(*) of `qs` per outer row, joined on `link`: one subquery, no fan-out."""
    counted = qs.order_by().values(link).annotate(n=Count("pk")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def overdue_obligations(today: dt.date) -> QuerySet[m.Obligation]:
    """Applicable obligations whose open cycle's due date has passed ("overdue" is derived)."""
    return m.Obligation.objects.filter(applicable=True, current_cycle__due_date__lt=today).exclude(
        current_cycle__status__in=m.CLOSED_STATUSES
    )


def providers_with_exposure(qs: QuerySet[m.Provider], today: dt.date) -> QuerySet[m.Provider]:
    """Providers with what their exposure needs: revenue prefetched, and counts of overdue
    obligations and open Ofcom notices as annotations (a constant number of queries)."""
    return qs.prefetch_related(
        Prefetch("revenue_periods", queryset=m.RevenuePeriod.objects.order_by("-end"))
    ).annotate(
        overdue_count=count_of(
            overdue_obligations(today).filter(provider=OuterRef("pk")), "provider"
        ),
        open_enforcement=count_of(
            m.OfcomNotice.objects.filter(
                service__provider=OuterRef("pk"),
                kind__in=m.ENFORCEMENT_KINDS,
                closed_on__isnull=True,
            ),
            "service__provider",
        ),
        open_technology=count_of(
            m.TechnologyNotice.objects.filter(
                service__provider=OuterRef("pk"), stage__in=OPEN_TECHNOLOGY_STAGES
            ),
            "service__provider",
        ),
    )


def exposure_reasons(provider: Any) -> list[str]:
    """Why an annotated provider's exposure is at risk; empty when it is not."""
    reasons = []
    if provider.overdue_count:
        reasons.append(f"{provider.overdue_count} overdue obligation(s)")
    if provider.open_enforcement:
        reasons.append(f"{provider.open_enforcement} open enforcement notice(s)")
    if provider.open_technology:
        reasons.append(f"{provider.open_technology} open Technology Notice(s)")
    return reasons
