"""Writes to risk assessments and Codes measure decisions, and what a regulatory change to the
Codes reopens."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from obligations.assessments.codes import level_for
from obligations.assessments.models import (
    AssessmentEntry,
    MeasureDecision,
    MeasureDecisionKind,
    RiskAssessment,
)
from obligations.assessments.selectors import (
    entry_label,
    factor_rules,
    harm_kinds_for,
    recommended_measures,
)
from obligations.catalogue.diff import CatalogueDiff
from obligations.catalogue.models import CodeMeasure, HarmKind, RiskFactor
from obligations.catalogue.rules import Catalogue
from obligations.catalogue.selectors import catalogue_parameters
from obligations.dates import display, london_today
from obligations.providers.models import Service
from obligations.register.actions import set_due_date
from obligations.register.cycles import in_force, open_cycle, recheck_reminders
from obligations.register.events import record_event
from obligations.register.models import Evidence, Obligation, ObligationCycle
from obligations.register.selectors import service_of_evidence
from obligations.register.states import CycleTrigger, EventKind, EventSource


def _regulatory_cycle(
    *, actor: User, obligation: Obligation, due: dt.date, note: str, source: str
) -> None:
    """Bring the work forward for a regulatory change: an open cycle is brought forward (and
    its assessment gains what is new); a closed one is followed by a new cycle. A duty not in
    force yet has nothing to bring forward."""
    if not in_force(obligation):
        return
    due = max(due, obligation.applies_since or due)
    cycle = obligation.current_cycle
    if cycle is None or cycle.is_closed:
        open_cycle(
            actor=actor,
            obligation=obligation,
            due=due,
            trigger=CycleTrigger.REGULATORY_CHANGE,
            source=source,
            note=note,
        )
        return
    if cycle.due_date is None or cycle.due_date > due:
        set_due_date(actor=actor, cycle=cycle, due=due, reason=note, source=source)
    else:
        record_event(
            actor=actor,
            obligation=obligation,
            cycle=cycle,
            kind=EventKind.DUE_CHANGED,
            source=source,
            reason=f"Due date kept at {cycle.due_date}, already before {due}. {note}",
            due_date=cycle.due_date,
        )
    assessment = RiskAssessment.objects.filter(cycle=cycle).first()
    if assessment is not None:
        _sync_entries(assessment)
        _sync_factors(actor=actor, assessment=assessment, source=source)


@transaction.atomic
def regulatory_change(*, actor: User, diff: CatalogueDiff, catalogue: Catalogue) -> list[str]:
    """Open (or bring forward) the cycles a regulatory change needs, on exactly the affected
    services, saying why: a new harm kind needs the assessments that rate it; a new or changed
    measure needs a decision on the duties it serves."""
    params = catalogue.parameters["assessment"]
    today = london_today()
    default_due = today + dt.timedelta(days=int(params["regulatory_change_days"]))
    source = EventSource.COMMAND
    touched: list[str] = []
    for harm in HarmKind.objects.filter(code__in=diff.harms_added):
        due = max(harm.assess_by or default_due, harm.effective_from)
        cite = harm.source or harm.source_url
        note = (
            f"Catalogue {catalogue.version} adds the harm kind “{harm.label}” ({cite}): "
            f"assess it by {display(due)}."
        )
        affected = Obligation.objects.filter(
            applicable=True,
            service__isnull=False,
            duty__assessment_kind__in=harm.assessments,
        ).select_related("current_cycle", "service", "duty")
        for obligation in affected.select_for_update(of=("self",)):
            _regulatory_cycle(actor=actor, obligation=obligation, due=due, note=note, source=source)
            touched.append(f"{obligation.service}: {obligation.duty.code}")
    measures = CodeMeasure.objects.filter(code__in=diff.measures_changed).prefetch_related("duties")
    for service in Service.objects.order_by("pk"):
        recommended = {r.code for r in recommended_measures(service, today) if r.recommended}
        for measure in measures:
            if measure.code not in recommended:
                continue
            due = max(default_due, measure.effective_from or default_due)
            note = (
                f"Catalogue {catalogue.version} adds or changes Ofcom's measure {measure.code} "
                f"({measure.summary}): decide it for this service by {display(due)}."
            )
            for obligation in Obligation.objects.filter(
                service=service, applicable=True, duty__in=measure.duties.all()
            ).select_related("current_cycle", "duty"):
                _regulatory_cycle(
                    actor=actor, obligation=obligation, due=due, note=note, source=source
                )
                touched.append(f"{service}: {obligation.duty.code} ({measure.code})")
    return touched


class AssessmentError(ValueError):
    """A risk assessment step the rules do not allow, in words."""


def _sync_entries(assessment: RiskAssessment) -> int:
    """Give the assessment a row for every harm kind (and age group) it must rate that it
    lacks; rated rows are never touched. Returns how many were added."""
    params = catalogue_parameters()["assessment"]
    ages = (
        [a["code"] for a in params["age_groups"]]
        if params["kinds"][assessment.kind]["by_age_group"]
        else [""]
    )
    harms = harm_kinds_for(assessment.kind, on=assessment.started_on)
    have = set(assessment.entries.values_list("harm_kind_id", "age_group"))
    missing = [
        AssessmentEntry(assessment=assessment, harm_kind=harm, age_group=age)
        for harm in harms
        for age in ages
        if (harm.pk, age) not in have
    ]
    AssessmentEntry.objects.bulk_create(missing)
    return len(missing)


def _sync_factors(*, actor: User, assessment: RiskAssessment, source: str) -> None:
    """Pre-select on each row the risk factors the service's features bring to it (the
    catalogue's `brought_in` rules), saying so on the record; never removes one."""
    rules = factor_rules(assessment)
    added: dict[str, list[str]] = {}
    entries = assessment.entries.select_related("harm_kind").prefetch_related("risk_factors")
    for entry in entries:
        have = set(entry.risk_factors.all())
        missing = [f for f, _ in rules.brought(entry.harm_kind.code) if f not in have]
        if missing:
            entry._history_user = actor  # type: ignore[attr-defined]
            entry.risk_factors.add(*missing)
            for factor in missing:
                added.setdefault(factor.label, []).append(entry_label(entry))
    for label, rows in added.items():
        record_event(
            actor=actor,
            obligation=assessment.cycle.obligation,
            cycle=assessment.cycle,
            kind=EventKind.ASSESSMENT,
            source=source,
            reason=f"Risk factor “{label}” selected on {'; '.join(rows)}: the service's "
            "features bring it (catalogue rule).",
        )


@transaction.atomic
def sync_open_assessments(*, actor: User, service: Service, source: str) -> None:
    """After a profile change: each open risk assessment of the service gains the risk
    factors its features now bring (a record already approved is left as it was)."""
    assessments = RiskAssessment.objects.filter(service=service).select_related("cycle__obligation")
    for assessment in assessments:
        if not assessment.cycle.is_closed:
            _sync_factors(actor=actor, assessment=assessment, source=source)


@transaction.atomic
def start_assessment(*, actor: User, cycle: ObligationCycle, source: str) -> RiskAssessment:
    """Start the risk assessment a cycle of a risk assessment duty needs, with a row for
    every harm kind in force today (and each age group, for children)."""
    cycle = ObligationCycle.objects.select_related("obligation__duty", "obligation__service").get(
        pk=cycle.pk
    )
    obligation = cycle.obligation
    kind = obligation.duty.assessment_kind
    if not kind or obligation.service is None:
        raise AssessmentError(f"{obligation.duty.code} is not a risk assessment duty.")
    if cycle.is_closed:
        raise AssessmentError("This cycle is closed: a new assessment belongs to a new cycle.")
    if RiskAssessment.objects.filter(cycle=cycle).exists():
        raise AssessmentError("This cycle already has its risk assessment.")
    assessment = RiskAssessment.objects.create(
        service=obligation.service,
        kind=kind,
        cycle=cycle,
        assessor=actor,
        started_on=london_today(),
    )
    added = _sync_entries(assessment)
    record_event(
        actor=actor,
        obligation=obligation,
        cycle=cycle,
        kind=EventKind.ASSESSMENT,
        source=source,
        reason=f"Risk assessment started: {added} rows to rate.",
    )
    _sync_factors(actor=actor, assessment=assessment, source=source)
    recheck_reminders(cycle)
    return assessment


def _editable(assessment: RiskAssessment) -> None:
    if assessment.cycle.is_closed:
        raise AssessmentError(
            "The cycle this assessment evidences is closed: the assessment is a record now."
        )


@transaction.atomic
def rate_entry(
    *,
    actor: User,
    entry: AssessmentEntry,
    likelihood: str,
    impact: str,
    rationale: str,
    risk_factors: Iterable[RiskFactor] = (),
    evidence: Iterable[Evidence] = (),
    evidence_notes: str = "",
    private_channels: str = "",
) -> AssessmentEntry:
    """Rate one harm kind: its level comes from the catalogue's likelihood-by-impact matrix.
    A row the catalogue's risk factor rules reach keeps the factors the service's features
    bring, and says how the risk in private and encrypted channels was assessed."""
    entry = AssessmentEntry.objects.select_related(
        "assessment__cycle", "assessment__service", "harm_kind"
    ).get(pk=entry.pk)
    assessment = entry.assessment
    _editable(assessment)
    params = catalogue_parameters()["assessment"]
    if likelihood not in params["likelihood"]:
        raise AssessmentError(f"Likelihood must be one of {', '.join(params['likelihood'])}.")
    if impact not in params["impact"]:
        raise AssessmentError(f"Impact must be one of {', '.join(params['impact'])}.")
    evidence = list(evidence)
    foreign = [e for e in evidence if service_of_evidence(e) != assessment.service_id]
    if foreign:
        raise AssessmentError("Evidence must be this service's own.")
    risk_factors = list(risk_factors)
    private_channels = (private_channels or "").strip()
    problem = factor_rules(assessment).problem(
        entry.harm_kind.code, [f.code for f in risk_factors], private_channels
    )
    if problem:
        raise AssessmentError(f"{entry_label(entry)}: {problem}")
    entry.likelihood, entry.impact = likelihood, impact
    entry.level = level_for(likelihood, impact, params)
    entry.rationale = (rationale or "").strip()
    entry.private_channels = private_channels
    entry.evidence_notes = (evidence_notes or "").strip()
    entry.updated_by, entry.updated_at = actor, timezone.now()
    entry._history_user = actor  # type: ignore[attr-defined]
    entry.save()
    entry.risk_factors.set(risk_factors)
    entry.evidence.set(evidence)
    return entry


@transaction.atomic
def update_assessment_notes(
    *, actor: User, assessment: RiskAssessment, understand: str, review: str
) -> None:
    _editable(assessment)
    assessment.understand_notes, assessment.review_notes = understand, review
    assessment._history_user = actor  # type: ignore[attr-defined]
    assessment.save(update_fields=["understand_notes", "review_notes", "updated_at"])


# What an adopted measure says when its decision gives no words of its own: the evidence does.
ADOPTED_AS_THE_CODE_DESCRIBES = "Adopted as the Code describes; see the evidence."


@dataclass(frozen=True)
class Decision:
    """One decision to record: on which measure, which kind, how or why, with what evidence."""

    measure: CodeMeasure
    decision: str
    detail: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class Refusal:
    """Why one decision cannot be recorded: the measure, the field at fault, in words."""

    measure: str  # the measure's code
    field: str  # "measure", "decision", "detail" or "evidence"
    message: str


class DecisionsRefused(AssessmentError):
    """Decisions the rules refuse, each refusal naming its measure and field; none recorded."""

    def __init__(self, refusals: list[Refusal]) -> None:
        self.refusals = refusals
        super().__init__("; ".join(f"{r.measure}: {r.message}" for r in refusals))


def _refusals(
    decision: Decision, register: set[int], owned: set[int], twice: set[int]
) -> Iterator[Refusal]:
    """What the rules refuse in one decision (the Act's record of each kind of decision)."""
    code, kind, detail = decision.measure.code, decision.decision, decision.detail.strip()
    if decision.measure.pk in twice:
        yield Refusal(code, "measure", "given two decisions at once: choose one.")
    if decision.measure.pk not in register:
        yield Refusal(code, "measure", "not a measure of a Code that applies to this service.")
    if kind not in MeasureDecisionKind.values:
        yield Refusal(code, "decision", "choose a decision (adopted, alternative, not applicable).")
    elif kind == MeasureDecisionKind.ADOPTED and not decision.evidence:
        yield Refusal(
            code, "evidence", "An adopted measure needs evidence: choose at least one item."
        )
    elif kind == MeasureDecisionKind.ALTERNATIVE and not detail:
        yield Refusal(
            code,
            "detail",
            "An alternative measure needs how it meets the duty (recorded as s.23(4) requires).",
        )
    elif kind == MeasureDecisionKind.NOT_APPLICABLE and not detail:
        yield Refusal(code, "detail", "Not applicable needs the reason.")
    if any(e.pk not in owned for e in decision.evidence):
        yield Refusal(code, "evidence", "Evidence must be this service's own.")


@transaction.atomic
def decide_measures(
    *, actor: User, service: Service, decisions: Iterable[Decision]
) -> list[MeasureDecision]:
    """Record decisions on the service's measures, all or none: every refusal is reported at
    once, naming the measure and the field. A decision that changes nothing (the same kind,
    words and evidence, against the measure as it stands) writes nothing; a change is a new
    version in the history. Returns the decisions written."""
    decisions = list(decisions)
    if not decisions:
        return []
    register = {r.measure["pk"] for r in recommended_measures(service, london_today())}
    owned = set(
        Evidence.objects.filter(
            pk__in={e.pk for d in decisions for e in d.evidence},
            cycle__obligation__service=service,
        ).values_list("pk", flat=True)
    )
    counts = Counter(d.measure.pk for d in decisions)
    twice = {pk for pk, n in counts.items() if n > 1}
    refusals = [r for d in decisions for r in _refusals(d, register, owned, twice)]
    if refusals:
        raise DecisionsRefused(refusals)
    existing = {
        record.measure_id: record
        for record in MeasureDecision.objects.select_for_update()
        .filter(service=service, measure__in=list(counts))
        .prefetch_related("evidence")
    }
    now = timezone.now()
    written = []
    for decision in decisions:
        measure = decision.measure
        # As a browser sends a textarea (CRLF), so that resubmitting the same words is no change.
        detail = decision.detail.replace("\r\n", "\n").strip() or ADOPTED_AS_THE_CODE_DESCRIBES
        evidence = {e.pk for e in decision.evidence}
        record = existing.get(measure.pk)
        if record is not None and (
            record.decision == decision.decision
            and record.detail == detail
            and {e.pk for e in record.evidence.all()} == evidence
            and record.decided_against_id == measure.changed_in_id
        ):
            continue
        record = record or MeasureDecision(service=service, measure=measure)
        record.decision, record.detail = decision.decision, detail
        record.decided_by, record.decided_at = actor, now
        record.decided_against_id = measure.changed_in_id
        record._history_user = actor  # type: ignore[attr-defined]
        record.save()
        record.evidence.set(decision.evidence)
        written.append(record)
    # The duties these measures serve may now be met: their cycles are looked at again.
    for cycle in ObligationCycle.objects.filter(
        obligation__service=service,
        obligation__duty__measures__in=[r.measure_id for r in written],
        obligation__current_cycle=F("pk"),
    ).distinct():
        recheck_reminders(cycle)
    return written


def decide_measure(
    *,
    actor: User,
    service: Service,
    measure: CodeMeasure,
    decision: str,
    detail: str,
    evidence: Iterable[Evidence] = (),
) -> MeasureDecision:
    """Record the decision on one measure; the record as it stands when it changes nothing."""
    written = decide_measures(
        actor=actor,
        service=service,
        decisions=[Decision(measure, decision, detail or "", tuple(evidence))],
    )
    if written:
        return written[0]
    return MeasureDecision.objects.get(service=service, measure=measure)
