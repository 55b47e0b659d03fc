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

from obligations import codes, penalties
from obligations import models as m
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
    m.RiskAssessment: "service__provider__organisation",
    m.AssessmentEntry: "assessment__service__provider__organisation",
    m.MeasureDecision: "service__provider__organisation",
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


# --- Risk assessments and Codes measures ----------------------------------


def harm_kinds_for(kind: str, *, on: dt.date) -> list[m.HarmKind]:
    """The harm kinds an assessment of `kind` rates, as in force on a date."""
    harms = m.HarmKind.objects.filter(retired_at__isnull=True, effective_from__lte=on).filter(
        Q(effective_until__isnull=True) | Q(effective_until__gte=on)
    )
    # The table is small; which assessments rate a kind is a JSON list.
    return [h for h in harms.order_by("family", "code") if kind in h.assessments]


def entry_label(entry: m.AssessmentEntry) -> str:
    return (
        f"{entry.harm_kind.label} ({entry.age_group})" if entry.age_group else entry.harm_kind.label
    )


def unrated_entries(assessment: m.RiskAssessment) -> list[str]:
    """The rows still without a level or a rationale, named."""
    entries = assessment.entries.select_related("harm_kind")
    return [entry_label(e) for e in entries if not e.complete]


def service_of_evidence(evidence: m.Evidence) -> int | None:
    return (
        m.Evidence.objects.filter(pk=evidence.pk)
        .values_list("cycle__obligation__service_id", flat=True)
        .first()
    )


def latest_levels(service: m.Service) -> dict[str, dict[str, int]]:
    """family -> harm code -> highest level rank, from the service's latest assessment of
    each family that has every row rated (an assessment half done decides nothing yet)."""
    params = catalogue_parameters()["assessment"]
    ranks = {level["code"]: int(level["rank"]) for level in params["levels"]}
    assessments = (
        m.RiskAssessment.objects.filter(service=service)
        .order_by("-started_on", "-pk")
        .prefetch_related(
            Prefetch("entries", queryset=m.AssessmentEntry.objects.select_related("harm_kind"))
        )
    )
    levels: dict[str, dict[str, int]] = {}
    for assessment in assessments:
        family = params["kinds"][assessment.kind]["family"]
        entries = list(assessment.entries.all())
        if family in levels or not entries or any(not e.level for e in entries):
            continue
        found: dict[str, int] = {}
        for entry in entries:
            code = entry.harm_kind.code
            found[code] = max(found.get(code, 0), ranks[entry.level])
        levels[family] = found
    return levels


def recommended_measures(service: m.Service, today: dt.date) -> list[codes.Recommendation]:
    """The measures of the Codes that apply to the service (by the risk assessments it owes),
    each with whether it is recommended and why."""
    params = catalogue_parameters()["assessment"]
    kinds = m.Obligation.objects.filter(
        service=service, applicable=True, duty__assessment_kind__gt=""
    ).values_list("duty__assessment_kind", flat=True)
    families = {code for kind in kinds for code in params["kinds"][kind]["codes"]}
    profile = service_profile(service)
    facts = codes.Facts(
        users=profile.uk_monthly_users,
        features=loaded_catalogue().implied_features(profile.features),
        categories=profile.categories,
        children_likely=profile.children_likely_to_access is not False,
        levels=latest_levels(service),
    )
    harms = {
        h.code: {"family": h.family, "group": h.group}
        for h in m.HarmKind.objects.filter(retired_at__isnull=True)
    }
    measures = [
        {
            "code": x.code,
            "code_family": x.code_family,
            "recommended_for": x.recommended_for,
            "status": x.status,
            "effective_from": x.effective_from.isoformat(),
            "pk": x.pk,
        }
        for x in m.CodeMeasure.objects.filter(retired_at__isnull=True).order_by("code")
    ]
    return codes.recommend(
        measures, facts, code_families=families, params=params, harms=harms, today=today
    )


def current_decisions(service: m.Service) -> dict[int, m.MeasureDecision]:
    """The service's decisions by measure, leaving out any made before the measure last
    changed (a changed measure needs deciding again)."""
    decisions = m.MeasureDecision.objects.filter(service=service).select_related(
        "measure", "decided_by"
    )
    return {d.measure_id: d for d in decisions if d.decided_against_id == d.measure.changed_in_id}


def undecided_measures(service: m.Service, duty: m.Duty) -> list[str]:
    """Codes of the recommended measures serving `duty` without a current decision."""
    serving = set(m.CodeMeasure.objects.filter(duties=duty).values_list("pk", flat=True))
    if not serving:
        return []
    decided = current_decisions(service)
    return [
        r.code
        for r in recommended_measures(service, timezone.localdate())
        if r.recommended and r.measure["pk"] in serving and r.measure["pk"] not in decided
    ]


def measures_register(service: m.Service, today: dt.date) -> list[dict[str, Any]]:
    """Every measure of the Codes that apply, with its recommendation and current decision
    (and the earlier one, if the measure changed since it was made)."""
    measures = {
        x.pk: x
        for x in m.CodeMeasure.objects.filter(retired_at__isnull=True).prefetch_related("duties")
    }
    current = current_decisions(service)
    stale = {
        d.measure_id: d
        for d in m.MeasureDecision.objects.filter(service=service).prefetch_related("evidence")
        if d.measure_id not in current
    }
    evidence = {
        d.pk: list(d.evidence.all())
        for d in m.MeasureDecision.objects.filter(
            pk__in=[d.pk for d in current.values()]
        ).prefetch_related("evidence")
    }
    rows = []
    for rec in recommended_measures(service, today):
        measure = measures[rec.measure["pk"]]
        decision = current.get(measure.pk)
        rows.append(
            {
                "measure": measure,
                "recommended": rec.recommended,
                "why": rec.why,
                "decision": decision,
                "evidence": evidence.get(decision.pk, []) if decision else [],
                "stale": stale.get(measure.pk),
            }
        )
    return rows
