"""Reads for risk assessments and Codes measures: harms, factors, latest levels, recommended
and undecided measures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Prefetch, Q, QuerySet

from obligations.assessments.codes import Facts, Recommendation, recommend
from obligations.assessments.models import AssessmentEntry, MeasureDecision, RiskAssessment
from obligations.catalogue.models import CodeMeasure, Duty, Feature, HarmKind, RiskFactor
from obligations.catalogue.rules import implied
from obligations.catalogue.selectors import catalogue_parameters
from obligations.dates import london_today
from obligations.providers.models import Service
from obligations.register.models import Obligation


def harm_kinds_for(kind: str, *, on: dt.date) -> list[HarmKind]:
    """The harm kinds an assessment of `kind` rates, as in force on a date."""
    harms = HarmKind.objects.filter(retired_at__isnull=True, effective_from__lte=on).filter(
        Q(effective_until__isnull=True) | Q(effective_until__gte=on)
    )
    # The table is small; which assessments rate a kind is a JSON list.
    return [h for h in harms.order_by("family", "code") if kind in h.assessments]


def entry_label(entry: AssessmentEntry) -> str:
    return (
        f"{entry.harm_kind.label} ({entry.age_group})" if entry.age_group else entry.harm_kind.label
    )


@dataclass(frozen=True)
class RatingProgress:
    rated: int
    rows: int

    def __str__(self) -> str:
        return f"{self.rated} of {self.rows} rated"


def rating_progress(entries: Iterable[AssessmentEntry]) -> RatingProgress:
    """How many of the rows have a level and a rationale: the one count of an assessment's
    progress, wherever it is shown (pass rows already fetched to count them without a query)."""
    entries = list(entries)
    return RatingProgress(rated=sum(e.complete for e in entries), rows=len(entries))


def unrated_entries(assessment: RiskAssessment) -> list[str]:
    """The rows still without a level or a rationale, named."""
    entries = assessment.entries.select_related("harm_kind")
    return [entry_label(e) for e in entries if not e.complete]


def service_features(service_id: int) -> frozenset[str]:
    """The service's features with those they imply (e2ee messaging is direct messaging)."""
    codes_ = Service.features.through.objects.filter(service_id=service_id).values_list(
        "feature__code", flat=True
    )
    implies = dict(Feature.objects.filter(retired_at__isnull=True).values_list("code", "implies"))
    return implied(codes_, implies)


@dataclass(frozen=True)
class FactorRules:
    """The catalogue's risk factor rules (`brought_in`) as they bear on one assessment: which
    factors the service's features bring to which harm kinds' rows, and which rows must then
    say how the risk in private and encrypted channels was assessed."""

    features: Mapping[str, str]  # the service's features (implied ones too): code -> label
    rules: tuple[RiskFactor, ...]  # the factors with a rule for this kind of assessment

    def brought(self, harm: str) -> list[tuple[RiskFactor, list[str]]]:
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
        the rules ("" when nothing)."""
        return self.problem_at(harm, factors, note)[1]

    def problem_at(self, harm: str, factors: Iterable[str], note: str) -> tuple[str, str]:
        """`problem`, with the entry field that must change to put it right ("risk_factors"
        or "private_channels"). A note is needed wherever a factor whose rule requires one
        is on the row, brought in or chosen by the assessor."""
        chosen = set(factors)
        for factor, by in self.brought(harm):
            if factor.code not in chosen:
                return "risk_factors", (
                    f"keep the risk factor “{factor.label}” selected: the service has "
                    f"{', '.join(by)}"
                )
        for factor in self.rules:
            rule = factor.brought_in
            needed = "requires_note" in rule and harm in rule["on_harms"] and factor.code in chosen
            if needed and not note.strip():
                return "private_channels", (
                    f"with the risk factor “{factor.label}”, “private and encrypted channels” "
                    f"must be filled in: {rule['requires_note']}"
                )
        return "", ""


def factors_for(kind: str) -> list[RiskFactor]:
    """The risk factors a row of an assessment of `kind` may have, by group and label."""
    factors = RiskFactor.objects.filter(retired_at__isnull=True).order_by("group", "label")
    # Which assessments a factor bears on is a JSON list; the table is small.
    return [f for f in factors if kind in f.assessments]


def factor_rules(assessment: RiskAssessment) -> FactorRules:
    """The catalogue's risk factor rules as they apply to the assessment's service today."""
    factors = RiskFactor.objects.filter(retired_at__isnull=True).order_by("code")
    has = service_features(assessment.service_id)
    return FactorRules(
        features=dict(Feature.objects.filter(code__in=has).values_list("code", "label")),
        rules=tuple(f for f in factors if f.brought_in and assessment.kind in f.assessments),
    )


def private_channel_gaps(assessment: RiskAssessment) -> list[str]:
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


def latest_levels(service: Service) -> dict[str, dict[str, int]]:
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
        RiskAssessment.objects.filter(service_id__in=service_ids)
        .order_by("-started_on", "-pk")
        .prefetch_related(
            Prefetch("entries", queryset=AssessmentEntry.objects.select_related("harm_kind"))
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


def recommended_measures(service: Service, today: dt.date) -> list[Recommendation]:
    """The measures of the Codes that apply to the service (by the risk assessments it owes),
    each with whether it is recommended and why."""
    return recommended_measures_of([service.pk], today).get(service.pk, [])


def recommended_measures_of(
    service_ids: list[int],
    today: dt.date,
    levels: dict[int, dict[str, dict[str, int]]] | None = None,
    parameters: dict[str, Any] | None = None,
) -> dict[int, list[Recommendation]]:
    """`recommended_measures` for many services in a fixed number of queries; `levels` is
    `latest_levels_of(service_ids)` and `parameters` the catalogue's, when the caller has
    them already."""
    parameters = parameters or catalogue_parameters()
    params = parameters["assessment"]
    families: dict[int, set[str]] = {sid: set() for sid in service_ids}
    for sid, kind in Obligation.objects.filter(
        service_id__in=service_ids, applicable=True, duty__assessment_kind__gt=""
    ).values_list("service_id", "duty__assessment_kind"):
        families[sid] |= set(params["kinds"][kind]["codes"])
    if levels is None:
        levels = latest_levels_of(service_ids, parameters)
    # The features' implications and labels are all of the catalogue this needs.
    implies, feature_names = {}, {}
    for code, implied_codes, label in Feature.objects.filter(retired_at__isnull=True).values_list(
        "code", "implies", "label"
    ):
        implies[code], feature_names[code] = implied_codes, label
    harms = {
        h.code: {"family": h.family, "group": h.group, "label": h.label}
        for h in HarmKind.objects.filter(retired_at__isnull=True)
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
        for x in CodeMeasure.objects.filter(retired_at__isnull=True).order_by("code")
    ]
    result = {}
    for sid, facts in _facts_of(service_ids, levels, implies).items():
        result[sid] = recommend(
            measures,
            facts,
            code_families=families[sid],
            params=params,
            harms=harms,
            feature_names=feature_names,
            today=today,
        )
    return result


def _facts_of(
    service_ids: list[int],
    levels: dict[int, dict[str, dict[str, int]]],
    implies: dict[str, list[str]],
) -> dict[int, Facts]:
    """What the services' recommended measures depend on, in three queries of plain values:
    not their whole profiles (revenue, exemption and the rest, and a model instance per
    category and feature), which the dashboard paid for on every load."""
    categories: dict[int, set[str]] = {}
    features: dict[int, set[str]] = {}
    for through, code, found in (
        (Service.categories.through, "registercategory__code", categories),
        (Service.features.through, "feature__code", features),
    ):
        rows = through.objects.filter(service_id__in=service_ids).values_list("service_id", code)
        for sid, value in rows:
            found.setdefault(sid, set()).add(value)
    return {
        sid: Facts(
            users=users,
            features=implied(features.get(sid, ()), implies),
            categories=frozenset(categories.get(sid, ())),
            children_likely=likely is not False,
            levels=levels.get(sid, {}),
        )
        for sid, users, likely in Service.objects.filter(pk__in=service_ids).values_list(
            "pk", "uk_monthly_users", "children_likely_to_access"
        )
    }


def current_decisions(service: Service) -> dict[int, MeasureDecision]:
    """The service's decisions by measure, leaving out any made before the measure last
    changed (a changed measure needs deciding again)."""
    decisions = current_decisions_of([service.pk]).select_related("measure", "decided_by")
    return {d.measure_id: d for d in decisions}


def current_decisions_of(service_ids: list[int]) -> QuerySet[MeasureDecision]:
    """Decisions made against the measure as it now stands (both empty: never changed)."""
    return MeasureDecision.objects.filter(service_id__in=service_ids).filter(
        Q(decided_against=F("measure__changed_in"))
        | Q(decided_against__isnull=True, measure__changed_in__isnull=True)
    )


def undecided_measures(service: Service, duty: Duty) -> list[str]:
    """Codes of the recommended measures serving `duty` without a current decision."""
    serving = set(CodeMeasure.objects.filter(duties=duty).values_list("pk", flat=True))
    if not serving:
        return []
    decided = current_decisions(service)
    return [
        r.code
        for r in recommended_measures(service, london_today())
        if r.recommended and r.measure["pk"] in serving and r.measure["pk"] not in decided
    ]


def measures_register(service: Service, today: dt.date) -> list[dict[str, Any]]:
    """Every measure of the Codes that apply, with its recommendation and current decision
    (and the earlier one, if the measure changed since it was made)."""
    measures = {
        x.pk: x
        for x in CodeMeasure.objects.filter(retired_at__isnull=True).prefetch_related("duties")
    }
    current = current_decisions(service)
    stale = {
        d.measure_id: d
        for d in MeasureDecision.objects.filter(service=service).prefetch_related("evidence")
        if d.measure_id not in current
    }
    evidence = {
        d.pk: list(d.evidence.all())
        for d in MeasureDecision.objects.filter(
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


@dataclass(frozen=True)
class DecisionProgress:
    """How far the decisions on a register (or one group of it) have come."""

    decided: int  # recommended measures with a current decision
    recommended: int  # measures recommended for the service: each needs a decision

    @property
    def undecided(self) -> int:
        return self.recommended - self.decided


def register_progress(rows: Iterable[Mapping[str, Any]]) -> DecisionProgress:
    """Of `measures_register` rows, how many of the recommended measures are decided."""
    recommended = [row for row in rows if row["recommended"]]
    return DecisionProgress(
        decided=sum(1 for row in recommended if row["decision"] is not None),
        recommended=len(recommended),
    )
