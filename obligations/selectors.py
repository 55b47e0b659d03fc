"""Every read that lists, counts or scopes. Admin, commands and (later) the API share these.

`scope` is the one place that decides which rows a user may see: by the organisations of
the user's active memberships (`held_organisations`), never by a Python list of the rows'
ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import (
    Count,
    F,
    IntegerField,
    Model,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from obligations import codes, penalties
from obligations import models as m
from obligations.catalogue import Catalogue, Profile, implied
from obligations.dates import london_today

# How each tenant-owned model reaches its organisation.
ORGANISATION_PATHS: dict[type[Model], str] = {
    m.Organisation: "pk",
    m.Membership: "organisation",
    m.MembershipEvent: "organisation",
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
    m.ComplianceCount: "provider__organisation",
}

User = AbstractBaseUser | AnonymousUser
# Who may approve an obligation's cycle (four eyes still applies to each of them). Managers
# review without editing: they approve or send back, and change nothing else.
REVIEWER_ROLES = (m.Role.ADMIN, m.Role.COMPLIANCE, m.Role.MANAGER)
REVIEW_TARGETS = (m.CycleStatus.MET, m.CycleStatus.SENT_BACK)
M = TypeVar("M", bound=Model)


def active_memberships(user: User, roles: tuple[str, ...] | None = None) -> QuerySet[m.Membership]:
    if not user.is_authenticated:
        return m.Membership.objects.none()
    qs = m.Membership.objects.active().filter(user_id=user.pk)
    if roles is not None:
        qs = qs.filter(role__in=roles)
    return qs


def active_memberships_of(organisation_id: int) -> QuerySet[m.Membership]:
    """The organisation's memberships in force."""
    return m.Membership.objects.active().filter(organisation_id=organisation_id)


def scope(qs: QuerySet[M], user: User, roles: tuple[str, ...] | None = None) -> QuerySet[M]:
    """Rows of `qs` that belong to organisations where `user` holds one of `roles`.

    Superusers (the installation's operators) see every organisation.
    """
    path = ORGANISATION_PATHS[qs.model]
    if getattr(user, "is_superuser", False) and user.is_active:
        return qs
    return qs.filter(**{f"{path}__in": held_organisations(user, roles, using=qs.db)})


def held_organisations(
    user: User, roles: tuple[str, ...] | None = None, using: str = DEFAULT_DB_ALIAS
) -> list[int] | QuerySet[m.Membership, Any]:
    """The organisations where `user` holds one of `roles` (any role if None), to filter by:
    in the form the database `using` plans best.

    PostgreSQL gets them as values, read once per user object with the user's roles
    (`roles_by_organisation`; a user holds a handful, so the list stays short however large
    the register grows). Only for values does it estimate a tenant's share of a table from
    the column's statistics. Given a subquery on the memberships, it took every tenant to be
    of average size and walked a large tenant's 100,000 obligations to find a small tenant's
    35: 85 ms for an API page that now takes 15, 178 ms for a dashboard that takes 44. With
    the values, the large tenant's pages are a tenth to a fifth faster too.

    SQLite keeps the subquery. It has no statistics per value (Python's sqlite3 is built
    without STAT4), so it plans any one tenant as an average one; given a value, it drove
    even a lone organisation's API page from its providers and sorted the whole register
    (10 ms became 44 ms at 100,000).
    """
    if connections[using].vendor != "postgresql":
        return active_memberships(user, roles).values("organisation_id")
    held = roles_by_organisation(user)
    return sorted(o for o, role in held.items() if roles is None or role in roles)


def visible_organisations(
    user: User, roles: tuple[str, ...] | None = None
) -> QuerySet[m.Organisation]:
    return scope(m.Organisation.objects.all(), user, roles)


def notifications_for(user: User) -> QuerySet[m.Reminder]:
    """A user's own notifications, plus every reminder of the organisations they oversee."""
    visible = scope(m.Reminder.objects.all(), user)
    if getattr(user, "is_superuser", False):
        return visible
    overseen = held_organisations(user, (m.Role.ADMIN, m.Role.MANAGER), using=visible.db)
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


def forget_roles(user: User) -> None:
    """Read the user's roles again at the next question (their memberships just changed)."""
    user.__dict__.pop("_tracker_roles", None)


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


def can_review(user: User, organisation_id: int | None = None) -> bool:
    """Whether the user may decide a cycle that is ready for review (approve or send back)."""
    if getattr(user, "is_superuser", False):
        return True
    return has_role(user, REVIEWER_ROLES, organisation_id)


def may_transition(user: User, organisation_id: int, to: str) -> bool:
    """Editors make any transition the workflow allows; reviewers who are not editors (the
    managers) only the review's two."""
    return can_edit(user, organisation_id) or (
        to in REVIEW_TARGETS and can_review(user, organisation_id)
    )


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
        "provider", "service", "duty", "owner"
    )


def search_related(qs: QuerySet[M], fields: Iterable[str], terms: Iterable[str]) -> QuerySet[M]:
    """Rows of `qs` with every term in one of `fields`, each a column of a related table
    ("duty__title"), as the admin's search over those fields would find them.

    Each term is looked for in the related tables (duties, services and providers: small),
    and the rows are then chosen by those ids: not a LIKE per field on every joined row,
    which took 145 ms for a page of the register and as long again for its count at 100,000.
    """
    related: dict[str, tuple[Any, list[str]]] = {}
    for path in fields:
        relation, _, column = path.partition("__")
        model = qs.model._meta.get_field(relation).related_model
        related.setdefault(relation, (model, []))[1].append(column)
    for term in terms:
        found = Q()
        for relation, (model, columns) in related.items():
            matching = Q.create([(f"{c}__icontains", term) for c in columns], connector=Q.OR)
            found |= Q(**{f"{relation}__in": model._default_manager.filter(matching).values("pk")})
        qs = qs.filter(found)
    return qs


# Long text no list shows: carried through the joins and the sort of a page of the register,
# it tripled the time PostgreSQL took (146 ms -> 64 ms at 100,000 without it).
LIST_DEFERRED = (
    "why",
    "notes",
    "not_applicable_reason",
    "duty__summary",
    "duty__applies",
    "duty__evidence",
    "duty__scope",
    "duty__unverified_note",
    "duty__source_url",
    "owner__password",
)


def service_profile(service: m.Service, *, today: dt.date | None = None) -> Profile:
    """The engine's view of a saved service (three queries: revenue and its M2M fields)."""
    revenue = (
        m.RevenuePeriod.objects.filter(provider_id=service.provider_id, complete=True)
        .order_by("-end")
        .values_list("amount_gbp", flat=True)
        .first()
    )
    return _profile(service, service.categories.all(), service.features.all(), revenue)


def _profile(
    service: m.Service, categories: Any, features: Any, revenue: Decimal | None
) -> Profile:
    return Profile(
        name=service.name,
        user_to_user=service.user_to_user,
        search=service.search,
        provider_pornography=service.provider_pornography,
        categories=frozenset(c.code for c in categories),
        uk_monthly_users=service.uk_monthly_users,
        children_likely_to_access=service.children_likely_to_access,
        features=frozenset(f.code for f in features),
        launch_date=service.launch_date,
        exemption=service.exemption.code if service.exemption_id else None,  # type: ignore[union-attr]
        uk_significant_users=service.uk_significant_users,
        uk_target_market=service.uk_target_market,
        uk_material_risk=service.uk_material_risk,
        qualifying_worldwide_revenue=Decimal(revenue) if revenue is not None else None,
    )


def latest_catalogue_version() -> m.CatalogueVersion | None:
    """The catalogue version loaded last: the one in force."""
    return m.CatalogueVersion.objects.order_by("-loaded_at", "-pk").first()


def duty_entry(duty: m.Duty) -> dict[str, Any]:
    """A loaded duty as the engine reads a catalogue entry (obligations.commencement too)."""
    entry = {
        "code": duty.code,
        "section": duty.section,
        "title": duty.title,
        "scope": duty.scope,
        "applies": duty.applies,
        "deadline": duty.deadline,
        "in_force_from": duty.in_force_from,
        "commencement": duty.commencement,
        "verified": duty.verified,
        "pk": duty.pk,
    }
    if duty.applies_note:  # the file gives applies_from and its note together, or neither
        entry["applies_from"], entry["applies_note"] = duty.applies_from, duty.applies_note
    return entry


def loaded_catalogue() -> Catalogue:
    """The catalogue as loaded in the database (retired entries left out)."""
    latest = latest_catalogue_version()
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
        duties=[duty_entry(d) for d in m.Duty.objects.filter(retired_at__isnull=True)],
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


# Rows each section of the morning view shows; the register lists all of them.
MY_WORK_SHOWN = 25


def my_work_filters(user: User, today: dt.date) -> dict[str, tuple[str, Q]]:
    """The morning view's sections as filters on the register (key -> title, filter): mine
    overdue, mine due in 30 days, awaiting my review, all mine open."""
    live = Q(applicable=True) & ~Q(status__in=m.CLOSED_STATUSES)
    mine = live & Q(owner_id=user.pk)
    return {
        "overdue": ("Overdue", mine & m.overdue(today)),
        "30": ("Due in the next 30 days", mine & m.due_within(today, 30)),
        "review": (
            "Waiting for my review",
            live
            & Q(status=m.CycleStatus.READY_FOR_REVIEW)
            & ~Q(owner_id=user.pk)
            & ~Q(current_cycle__submitted_by_id=user.pk),
        ),
        "open": ("All my open obligations", mine),
    }


def my_work(user: User, today: dt.date) -> list[dict[str, Any]]:
    """Each section of the morning view: its key, title, size and most urgent rows (two
    queries each, however much work there is; the register lists the rest)."""
    listed = obligations_for_list(user)
    sections = []
    for key, (title, wanted) in my_work_filters(user, today).items():
        rows = listed.filter(wanted)
        sections.append(
            {
                "key": key,
                "title": title,
                "count": rows.count(),
                "rows": list(rows.order_by("due_date", "pk")[:MY_WORK_SHOWN]),
            }
        )
    return sections


# --- Money: the penalty cap and exposure ----------------------------------


# Where `providers_with_exposure` puts each provider's revenue periods.
REVENUE_HISTORY = "revenue_history"


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
    """The provider's recorded revenue periods, newest first (the list
    `providers_with_exposure` prefetched, when it did)."""
    periods = getattr(provider, REVENUE_HISTORY, None)
    if periods is None:
        periods = provider.revenue_periods.all()
    return [as_revenue(p) for p in periods]


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
    return m.Obligation.objects.filter(m.overdue(today), applicable=True)


def providers_with_exposure(
    qs: QuerySet[m.Provider], today: dt.date, *, count_overdue: bool = True
) -> QuerySet[m.Provider]:
    """Providers with what their exposure needs: revenue prefetched, and counts of overdue
    obligations and open Ofcom notices as annotations (a constant number of queries).
    `count_overdue=False` leaves the overdue count to a caller that already has it (the
    dashboard counts overdue obligations for its own figures)."""
    counts = {
        "open_enforcement": count_of(
            m.OfcomNotice.objects.filter(
                service__provider=OuterRef("pk"),
                kind__in=m.ENFORCEMENT_KINDS,
                closed_on__isnull=True,
            ),
            "service__provider",
        ),
        "open_technology": count_of(
            m.TechnologyNotice.objects.filter(
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
        queryset=m.RevenuePeriod.objects.order_by("-end"),
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


def service_features(service_id: int) -> frozenset[str]:
    """The service's features with those they imply (e2ee messaging is direct messaging)."""
    codes_ = m.Service.features.through.objects.filter(service_id=service_id).values_list(
        "feature__code", flat=True
    )
    implies = dict(m.Feature.objects.filter(retired_at__isnull=True).values_list("code", "implies"))
    return implied(codes_, implies)


@dataclass(frozen=True)
class FactorRules:
    """The catalogue's risk factor rules (`brought_in`) as they bear on one assessment: which
    factors the service's features bring to which harm kinds' rows, and which rows must then
    say how the risk in private and encrypted channels was assessed."""

    features: Mapping[str, str]  # the service's features (implied ones too): code -> label
    rules: tuple[m.RiskFactor, ...]  # the factors with a rule for this kind of assessment

    def brought(self, harm: str) -> list[tuple[m.RiskFactor, list[str]]]:
        """The factors the service's features bring to the rows of `harm`, each with the
        labels of the features that bring it."""
        found = []
        for factor in self.rules:
            rule = factor.brought_in
            by = [self.features[c] for c in rule["by_features"] if c in self.features]
            if harm in rule["on_harms"] and by:
                found.append((factor, by))
        return found

    def problem(self, harm: str, factors: Iterable[str], note: str) -> str:
        """What a row of `harm` with these risk factors and private channels note lacks under
        the rules ("" when nothing). A note is needed wherever a factor whose rule requires
        one is on the row, brought in or chosen by the assessor."""
        chosen = set(factors)
        for factor, by in self.brought(harm):
            if factor.code not in chosen:
                return (
                    f"keep the risk factor “{factor.label}” selected: the service has "
                    f"{', '.join(by)}"
                )
        for factor in self.rules:
            rule = factor.brought_in
            needed = "requires_note" in rule and harm in rule["on_harms"] and factor.code in chosen
            if needed and not note.strip():
                return (
                    f"with the risk factor “{factor.label}”, “private and encrypted channels” "
                    f"must be filled in: {rule['requires_note']}"
                )
        return ""


def factor_rules(assessment: m.RiskAssessment) -> FactorRules:
    """The catalogue's risk factor rules as they apply to the assessment's service today."""
    factors = m.RiskFactor.objects.filter(retired_at__isnull=True).order_by("code")
    has = service_features(assessment.service_id)
    return FactorRules(
        features=dict(m.Feature.objects.filter(code__in=has).values_list("code", "label")),
        rules=tuple(f for f in factors if f.brought_in and assessment.kind in f.assessments),
    )


def private_channel_gaps(assessment: m.RiskAssessment) -> list[str]:
    """The rows that do not yet meet the risk factor rules, named and grouped by what they
    lack ("CSEA: grooming; CSEA: CSAM URLs: with the risk factor ...")."""
    rules = factor_rules(assessment)
    if not rules.rules:
        return []
    entries = assessment.entries.select_related("harm_kind").prefetch_related("risk_factors")
    rows: dict[str, list[str]] = {}
    for entry in entries:
        factors = [f.code for f in entry.risk_factors.all()]
        problem = rules.problem(entry.harm_kind.code, factors, entry.private_channels)
        if problem:
            rows.setdefault(problem, []).append(entry_label(entry))
    return [f"{'; '.join(labels)}: {problem}" for problem, labels in rows.items()]


def service_of_evidence(evidence: m.Evidence) -> int | None:
    return (
        m.Evidence.objects.filter(pk=evidence.pk)
        .values_list("cycle__obligation__service_id", flat=True)
        .first()
    )


def latest_levels(service: m.Service) -> dict[str, dict[str, int]]:
    return latest_levels_of([service.pk]).get(service.pk, {})


def latest_levels_of(
    service_ids: list[int], parameters: dict[str, Any] | None = None
) -> dict[int, dict[str, dict[str, int]]]:
    """service -> family -> harm code -> highest level rank, from each service's latest
    assessment of each family that has every row rated (one half done decides nothing yet).
    Two queries however many services (three without the catalogue's `parameters`)."""
    params = (parameters or catalogue_parameters())["assessment"]
    ranks = {level["code"]: int(level["rank"]) for level in params["levels"]}
    assessments = (
        m.RiskAssessment.objects.filter(service_id__in=service_ids)
        .order_by("-started_on", "-pk")
        .prefetch_related(
            Prefetch("entries", queryset=m.AssessmentEntry.objects.select_related("harm_kind"))
        )
    )
    by_service: dict[int, dict[str, dict[str, int]]] = {}
    for assessment in assessments:
        levels = by_service.setdefault(assessment.service_id, {})
        family = params["kinds"][assessment.kind]["family"]
        entries = list(assessment.entries.all())
        if family in levels or not entries or any(not e.level for e in entries):
            continue
        found: dict[str, int] = {}
        for entry in entries:
            code = entry.harm_kind.code
            found[code] = max(found.get(code, 0), ranks[entry.level])
        levels[family] = found
    return by_service


def recommended_measures(service: m.Service, today: dt.date) -> list[codes.Recommendation]:
    """The measures of the Codes that apply to the service (by the risk assessments it owes),
    each with whether it is recommended and why."""
    return recommended_measures_of([service.pk], today).get(service.pk, [])


def recommended_measures_of(
    service_ids: list[int],
    today: dt.date,
    levels: dict[int, dict[str, dict[str, int]]] | None = None,
    parameters: dict[str, Any] | None = None,
) -> dict[int, list[codes.Recommendation]]:
    """`recommended_measures` for many services in a fixed number of queries; `levels` is
    `latest_levels_of(service_ids)` and `parameters` the catalogue's, when the caller has
    them already."""
    parameters = parameters or catalogue_parameters()
    params = parameters["assessment"]
    families: dict[int, set[str]] = {sid: set() for sid in service_ids}
    for sid, kind in m.Obligation.objects.filter(
        service_id__in=service_ids, applicable=True, duty__assessment_kind__gt=""
    ).values_list("service_id", "duty__assessment_kind"):
        families[sid] |= set(params["kinds"][kind]["codes"])
    if levels is None:
        levels = latest_levels_of(service_ids, parameters)
    # The features' implications are all of the catalogue this needs.
    implies = dict(m.Feature.objects.filter(retired_at__isnull=True).values_list("code", "implies"))
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
            "effective_from": x.effective_from,
            "pk": x.pk,
        }
        for x in m.CodeMeasure.objects.filter(retired_at__isnull=True).order_by("code")
    ]
    result = {}
    for sid, facts in _facts_of(service_ids, levels, implies).items():
        result[sid] = codes.recommend(
            measures, facts, code_families=families[sid], params=params, harms=harms, today=today
        )
    return result


def _facts_of(
    service_ids: list[int],
    levels: dict[int, dict[str, dict[str, int]]],
    implies: dict[str, list[str]],
) -> dict[int, codes.Facts]:
    """What the services' recommended measures depend on, in three queries of plain values:
    not their whole profiles (revenue, exemption and the rest, and a model instance per
    category and feature), which the dashboard paid for on every load."""
    categories: dict[int, set[str]] = {}
    features: dict[int, set[str]] = {}
    for through, code, found in (
        (m.Service.categories.through, "registercategory__code", categories),
        (m.Service.features.through, "feature__code", features),
    ):
        rows = through.objects.filter(service_id__in=service_ids).values_list("service_id", code)
        for sid, value in rows:
            found.setdefault(sid, set()).add(value)
    return {
        sid: codes.Facts(
            users=users,
            features=implied(features.get(sid, ()), implies),
            categories=frozenset(categories.get(sid, ())),
            children_likely=likely is not False,
            levels=levels.get(sid, {}),
        )
        for sid, users, likely in m.Service.objects.filter(pk__in=service_ids).values_list(
            "pk", "uk_monthly_users", "children_likely_to_access"
        )
    }


def current_decisions(service: m.Service) -> dict[int, m.MeasureDecision]:
    """The service's decisions by measure, leaving out any made before the measure last
    changed (a changed measure needs deciding again)."""
    decisions = current_decisions_of([service.pk]).select_related("measure", "decided_by")
    return {d.measure_id: d for d in decisions}


def current_decisions_of(service_ids: list[int]) -> QuerySet[m.MeasureDecision]:
    """Decisions made against the measure as it now stands (both empty: never changed)."""
    return m.MeasureDecision.objects.filter(service_id__in=service_ids).filter(
        Q(decided_against=F("measure__changed_in"))
        | Q(decided_against__isnull=True, measure__changed_in__isnull=True)
    )


def undecided_measures(service: m.Service, duty: m.Duty) -> list[str]:
    """Codes of the recommended measures serving `duty` without a current decision."""
    serving = set(m.CodeMeasure.objects.filter(duties=duty).values_list("pk", flat=True))
    if not serving:
        return []
    decided = current_decisions(service)
    return [
        r.code
        for r in recommended_measures(service, london_today())
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


# --- The register as it stands, or as it stood ----------------------------


def end_of_day(day: dt.date) -> dt.datetime:
    """The first instant after `day` in Europe/London (deadlines are London dates)."""
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))


def register_state(
    qs: QuerySet[m.Obligation], *, as_of: dt.date | None = None
) -> QuerySet[m.Obligation]:
    """Obligations annotated with the register's state alone (r_applicable, r_status, r_due,
    r_owner_id), as `register` rebuilds it, and with no join: what counting needs. (A join
    that is never read still costs SQLite a lookup per row.)"""
    if as_of is None:
        return qs.annotate(
            r_applicable=F("applicable"),
            r_status=F("status"),
            r_due=F("due_date"),
            r_owner_id=F("owner_id"),
        )
    end, events, past = _past_records(as_of)
    return qs.filter(created_at__lt=end).annotate(
        r_applicable=Subquery(past.values("applicable")[:1]),
        r_status=Subquery(events.exclude(to_status="").values("to_status")[:1]),
        r_due=Subquery(
            events.filter(kind__in=(m.EventKind.CYCLE_OPENED, m.EventKind.DUE_CHANGED)).values(
                "due_date"
            )[:1]
        ),
        r_owner_id=Subquery(past.values("owner_id")[:1]),
    )


def register(
    qs: QuerySet[m.Obligation], *, today: dt.date, as_of: dt.date | None = None
) -> QuerySet[m.Obligation]:
    """Obligations annotated with the register's columns (r_status, r_due, r_owner, ...),
    either as they stand, or as they stood at the end of `as_of`.

    The past is rebuilt from the append-only record: an obligation's status and due date
    from its events (each status change and each due-date change is an event carrying the
    new value), its owner and applicability from its field history. Every column is a
    correlated subquery, so a page of the past register still costs one query.
    """
    state = register_state(qs, as_of=as_of)
    if as_of is None:
        evidence = current_evidence_of(OuterRef("current_cycle"), today)
        return state.annotate(
            r_cycle=F("current_cycle_id"),
            r_owner=F("owner__username"),
            r_evidence_count=count_of(evidence, "cycle"),
            r_last_change=Subquery(
                m.Event.objects.filter(obligation=OuterRef("pk"))
                .order_by("-at", "-id")
                .values("at")[:1]
            ),
        )
    end, events, past = _past_records(as_of)
    evidence = (
        m.Evidence.objects.filter(cycle=OuterRef("r_cycle"), uploaded_at__lt=end)
        .filter(Q(purged_at__isnull=True) | Q(purged_at__gte=end))
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=as_of))
        .exclude(superseded_by__uploaded_at__lt=end)
    )
    return state.annotate(
        r_cycle=Subquery(events.filter(kind=m.EventKind.CYCLE_OPENED).values("cycle")[:1]),
        r_owner=Subquery(past.values("owner__username")[:1]),
        r_evidence_count=count_of(evidence, "cycle"),
        r_last_change=Subquery(events.values("at")[:1]),
    )


def _past_records(as_of: dt.date) -> tuple[dt.datetime, QuerySet[m.Event], QuerySet[Any]]:
    """The end of `as_of`, and each obligation's events and field history before it, newest
    first (for correlated subqueries on the obligation)."""
    end = end_of_day(as_of)
    events = m.Event.objects.filter(obligation=OuterRef("pk"), at__lt=end).order_by("-at", "-id")
    past = m.Obligation.history.model.objects.filter(  # type: ignore[attr-defined]
        id=OuterRef("pk"), history_date__lt=end
    ).order_by("-history_date", "-history_id")
    return end, events, past


def current_evidence_of(cycle: Any, today: dt.date) -> QuerySet[m.Evidence]:
    """Evidence that counts for `cycle` (an id or an OuterRef): not purged, not superseded,
    not expired."""
    return m.Evidence.objects.filter(
        Q(expires_on__isnull=True) | Q(expires_on__gte=today),
        cycle=cycle,
        purged_at__isnull=True,
        superseded_by__isnull=True,
    )


def register_overdue(today: dt.date) -> Q:
    """The register's rows that are overdue on `today` (a filter on `register`'s columns)."""
    return Q(r_applicable=True) & m.overdue(today, status="r_status", due="r_due")


def overseen_token_holders(user: User) -> QuerySet[Any]:
    """Users whose API tokens `user` may list and revoke (never make, nor see a key of:
    services.create_api_token): themselves, and the members of organisations they
    administer; operators, everyone."""
    users = get_user_model().objects.filter(is_active=True)
    if getattr(user, "is_superuser", False):
        return users
    administered = active_memberships(user, (m.Role.ADMIN,)).values("organisation_id")
    members = m.Membership.objects.active().filter(organisation__in=administered)
    return users.filter(Q(pk=user.pk) | Q(pk__in=members.values("user_id")))


def api_tokens_for(user: User) -> QuerySet[m.ApiToken]:
    return m.ApiToken.objects.filter(user__in=overseen_token_holders(user).values("pk"))


def states_at(
    days: list[dt.date], obligations: QuerySet[m.Obligation], *, by_service: bool = False
) -> dict[tuple[int | None, int | None, dt.date], tuple[int, int]]:
    """(met, applicable) at the end of each day, from the events alone, in one query:
    each status event is in force from its time until the obligation's next status event
    (a window function), so an obligation's status at a moment is the event then in force.
    Keyed by (provider, service, day), or (None, None, day) unless `by_service`."""
    adapt = connection.ops.adapt_datetimefield_value
    cuts = [adapt(end_of_day(day)) for day in days]
    scope_sql, scope_params = obligations.values("pk").query.sql_with_params()
    columns = ", ".join(
        "SUM(CASE WHEN at < %s AND (next_at IS NULL OR next_at >= %s) "
        "AND to_status = 'met' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN at < %s AND (next_at IS NULL OR next_at >= %s) "
        "AND to_status <> 'not_applicable' THEN 1 ELSE 0 END)"
        for _ in cuts
    )
    group = "provider_id, service_id" if by_service else "NULL, NULL"
    params: list[Any] = [value for cut in cuts for value in (cut, cut, cut, cut)]
    sql = (
        f"SELECT {group}, {columns} FROM ("
        " SELECT e.to_status, e.at, o.provider_id, o.service_id,"
        " LEAD(e.at) OVER (PARTITION BY e.obligation_id ORDER BY e.at, e.id) AS next_at"
        f" FROM {m.Event._meta.db_table} e"
        f" JOIN {m.Obligation._meta.db_table} o ON o.id = e.obligation_id"
        f" WHERE e.to_status <> '' AND e.at < %s AND e.obligation_id IN ({scope_sql})"
        ") AS states" + (" GROUP BY provider_id, service_id" if by_service else "")
    )
    result: dict[tuple[int | None, int | None, dt.date], tuple[int, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, adapt(end_of_day(max(days))), *scope_params])
        for row in cursor.fetchall():
            for i, day in enumerate(days):
                met, applicable = int(row[2 + 2 * i] or 0), int(row[3 + 2 * i] or 0)
                result[(row[0], row[1], day)] = (met, applicable)
    return result
