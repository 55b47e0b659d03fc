"""Every list in the API, and the register's exports, cost the same number of queries for a
few rows as for hundreds: nothing is fetched per row."""

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from obligations.access.models import Membership, Organisation, Role
from obligations.assessments.models import (
    AssessmentEntry,
    AssessmentKind,
    MeasureDecision,
    MeasureDecisionKind,
    RiskAssessment,
)
from obligations.catalogue.models import (
    CatalogueVersion,
    CodeMeasure,
    Duty,
    Exemption,
    Feature,
    HarmKind,
    RegisterCategory,
    RiskFactor,
)
from obligations.notices.models import ENFORCEMENT_KINDS, NoticeKind, OfcomNotice, TechnologyNotice
from obligations.providers.models import Provider, RevenueBasis, RevenuePeriod, Service
from obligations.register.models import Event, Evidence, EvidenceKind, Obligation, ObligationCycle
from obligations.register.states import CycleStatus, EventKind, EventSource
from obligations.reminders.models import Reminder, ReminderKind
from tests.bulk import make_register
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, member
from tests.helpers import assert_constant_queries, client_for

SIZES = (10, 500)


@pytest.fixture
def team(catalogue):  # type: ignore[no-untyped-def]
    """Our organisation (two members), and theirs with a register the lists must not show."""
    ours, theirs = OrganisationFactory(name="Ours"), OrganisationFactory(name="Theirs")
    casey, rita = member(ours, username="casey"), member(ours, username="rita")
    make_register(organisation=theirs, obligations=20, today=TODAY, name_prefix="Theirs")
    return {"org": ours, "casey": casey, "rita": rita, "client": client_for(casey)}


def ours(model: type[Any], team: dict[str, Any]) -> Any:
    """The rows of `model` our organisation holds (the other's are never counted)."""
    path = {
        Provider: "organisation",
        Service: "provider__organisation",
        Obligation: "provider__organisation",
        ObligationCycle: "obligation__provider__organisation",
    }[model]
    return model.objects.filter(**{path: team["org"]})


def register(team: dict[str, Any], obligations: int, **kwargs: Any) -> None:
    """Our register grown to `obligations` rows (owned by both members, with events)."""
    have = ours(Obligation, team).count()
    if obligations > have:
        make_register(
            organisation=team["org"],
            obligations=obligations - have,
            today=TODAY,
            owners=[team["casey"], team["rita"]],
            **kwargs,
        )


def cycles(team: dict[str, Any]) -> list[ObligationCycle]:
    return list(ours(ObligationCycle, team).select_related("obligation").order_by("pk"))


def check_list(
    team: dict[str, Any],
    url: str,
    grow: Callable[[int], None],
    sizes: tuple[int, int] = SIZES,
    **params: str,
) -> None:
    """The list at `url` renders every row in one page with the same queries at both sizes."""
    expected = {"rows": 0}

    def grow_to(n: int) -> None:
        grow(n)
        expected["rows"] = n

    def measure() -> None:
        response = team["client"].get(url, {"page_size": 500, **params})
        assert response.status_code == 200, response.content
        assert len(response.json()["results"]) == expected["rows"]

    assert_constant_queries(grow_to, measure, sizes)


# --- Lists -----------------------------------------------------------------


def test_organisations(team):
    def grow(n: int) -> None:
        have = Membership.objects.filter(user=team["casey"]).count()
        organisations = Organisation.objects.bulk_create(
            [Organisation(name=f"Group {i}") for i in range(have, n)]
        )
        Membership.objects.bulk_create(
            [
                Membership(user=team["casey"], organisation=o, role=Role.AUDITOR)
                for o in organisations
            ]
        )

    check_list(team, "/api/v1/organisations/", grow)


def test_providers_with_revenue_cap_and_exposure(team):
    register(team, 35, due_spread=(-30, 30))  # a provider with overdue obligations
    OfcomNotice.objects.create(
        service=ours(Service, team).first(), kind=ENFORCEMENT_KINDS[0], given_on=TODAY
    )

    def grow(n: int) -> None:
        have = ours(Provider, team).count()
        providers = Provider.objects.bulk_create(
            [Provider(organisation=team["org"], name=f"Provider {i}") for i in range(have, n)]
        )
        RevenuePeriod.objects.bulk_create(
            [
                RevenuePeriod(
                    provider=p,
                    start=dt.date(year, 1, 1),
                    end=dt.date(year, 12, 31),
                    amount_gbp=Decimal("300000000.00"),
                    basis=RevenueBasis.AUDITED,
                )
                for p in providers
                for year in (2024, 2025)
            ]
        )

    check_list(team, "/api/v1/providers/", grow)


def test_services_with_categories_features_and_exemption(team):
    categories = list(RegisterCategory.objects.all())
    features = list(Feature.objects.all())
    exemption = Exemption.objects.first()
    provider = Provider.objects.create(organisation=team["org"], name="Northwind")

    def grow(n: int) -> None:
        have = ours(Service, team).count()
        services = Service.objects.bulk_create(
            [
                Service(
                    provider=provider,
                    name=f"Service {i}",
                    user_to_user=True,
                    uk_monthly_users=1000 + i,
                    children_likely_to_access=False,
                    exemption=exemption if i % 3 == 0 else None,
                )
                for i in range(have, n)
            ]
        )
        Service.categories.through.objects.bulk_create(
            [
                Service.categories.through(service=s, registercategory=categories[i % 3])
                for i, s in enumerate(services)
            ]
        )
        Service.features.through.objects.bulk_create(
            [Service.features.through(service=s, feature=f) for s in services for f in features[:3]]
        )

    check_list(team, "/api/v1/services/", grow)


def test_duties(team):
    template = Duty.objects.first()
    in_catalogue = Duty.objects.count()

    def grow(n: int) -> None:
        have = Duty.objects.count()
        Duty.objects.bulk_create(
            [
                Duty(
                    code=f"EXTRA-{i}",
                    title=f"Extra duty {i}",
                    section="s.999",
                    part="9",
                    instrument=template.instrument,
                    summary="Generated.",
                    in_force_from=template.in_force_from,
                    commencement=template.commencement,
                    effective_from=template.effective_from,
                    applies=template.applies,
                    deadline=template.deadline,
                    source_url=template.source_url,
                    catalogue_version=template.catalogue_version,
                )
                for i in range(have, n)
            ]
        )

    check_list(team, "/api/v1/duties/", grow, sizes=(in_catalogue + 5, 500))


@pytest.mark.parametrize("as_of", [None, TODAY.isoformat()], ids=["today", "as_of"])
def test_obligations(team, as_of):
    """The register, as it stands and as it stood (every column a subquery: one query)."""
    params = {"as_of": as_of} if as_of else {}
    check_list(
        team,
        "/api/v1/obligations/",
        lambda n: register(team, n, events_per_obligation=2),
        **params,
    )


def test_events(team):
    register(team, 1)
    obligation = ours(Obligation, team).select_related("current_cycle").get()
    now = timezone.now()

    def grow(n: int) -> None:
        have = Event.objects.filter(obligation=obligation).count()
        Event.objects.bulk_create(
            [
                Event(
                    obligation=obligation,
                    cycle=obligation.current_cycle,
                    kind=EventKind.STATUS,
                    from_status=CycleStatus.NOT_STARTED,
                    to_status=CycleStatus.IN_PROGRESS,
                    actor=(team["casey"], team["rita"])[i % 2],
                    at=now - dt.timedelta(minutes=i),
                    reason="Generated.",
                    source=EventSource.API,
                )
                for i in range(have, n)
            ]
        )

    check_list(team, "/api/v1/events/", grow)


def link(cycle: ObligationCycle, i: int, by: Any) -> Evidence:
    return Evidence(
        cycle=cycle,
        kind=EvidenceKind.LINK,
        title=f"Link {i}",
        url=f"https://wiki.example.test/{i}",
        uploaded_by=by,
        uploaded_at=timezone.now(),
    )


def test_evidence(team):
    register(team, 35)
    all_cycles = cycles(team)

    def grow(n: int) -> None:
        have = Evidence.objects.filter(cycle__in=all_cycles).count()
        Evidence.objects.bulk_create(
            [
                link(all_cycles[i % len(all_cycles)], i, (team["casey"], team["rita"])[i % 2])
                for i in range(have, n)
            ]
        )

    check_list(team, "/api/v1/evidence/", grow)


def test_technology_notices(team):
    register(team, 35)
    services = list(ours(Service, team))

    def grow(n: int) -> None:
        have = TechnologyNotice.objects.filter(service__in=services).count()
        TechnologyNotice.objects.bulk_create(
            [
                TechnologyNotice(
                    service=services[i % len(services)],
                    ofcom_reference=f"TN-{i}",
                    csea_public=True,
                )
                for i in range(have, n)
            ]
        )

    check_list(team, "/api/v1/technology-notices/", grow)


def test_ofcom_notices(team):
    register(team, 35)
    services = list(ours(Service, team))

    def grow(n: int) -> None:
        have = OfcomNotice.objects.filter(service__in=services).count()
        OfcomNotice.objects.bulk_create(
            [
                OfcomNotice(
                    service=services[i % len(services)],
                    kind=NoticeKind.PENALTY,
                    given_on=TODAY - dt.timedelta(days=i),
                    single_penalty_gbp=Decimal("50000"),
                    pay_by=TODAY + dt.timedelta(days=28),
                )
                for i in range(have, n)
            ]
        )

    check_list(team, "/api/v1/ofcom-notices/", grow)


def test_reminders(team):
    register(team, 35)
    all_cycles = cycles(team)

    def grow(n: int) -> None:
        have = Reminder.objects.filter(cycle__in=all_cycles).count()
        Reminder.objects.bulk_create(
            [
                Reminder(
                    cycle=all_cycles[i % len(all_cycles)],
                    kind=ReminderKind.DUE_SOON,
                    step=i,
                    deadline=TODAY + dt.timedelta(days=7),
                    recipient=team["casey"],
                    reason="Due in a week.",
                    created_at=timezone.now(),
                )
                for i in range(have, n)
            ]
        )

    check_list(team, "/api/v1/reminders/", grow)


def test_risk_assessments_with_their_rated_rows(team):
    register(team, SIZES[1])
    all_cycles = cycles(team)
    harms = list(HarmKind.objects.all()[:3])
    factors = list(RiskFactor.objects.all()[:2])
    evidence = Evidence.objects.bulk_create(
        [link(c, i, team["casey"]) for i, c in enumerate(all_cycles[:5])]
    )

    def grow(n: int) -> None:
        have = RiskAssessment.objects.filter(cycle__in=all_cycles).count()
        assessments = RiskAssessment.objects.bulk_create(
            [
                RiskAssessment(
                    service_id=c.obligation.service_id,
                    kind=AssessmentKind.ILLEGAL_U2U,
                    cycle=c,
                    assessor=team["casey"],
                    approver=team["rita"],
                    started_on=TODAY,
                )
                for c in all_cycles[have:n]
            ]
        )
        entries = AssessmentEntry.objects.bulk_create(
            [
                AssessmentEntry(
                    assessment=a,
                    harm_kind=h,
                    likelihood="low",
                    impact="low",
                    level="low",
                    rationale="Generated.",
                    updated_by=team["casey"],
                )
                for a in assessments
                for h in harms
            ]
        )
        AssessmentEntry.risk_factors.through.objects.bulk_create(
            [
                AssessmentEntry.risk_factors.through(assessmententry=e, riskfactor=f)
                for e in entries
                for f in factors
            ]
        )
        AssessmentEntry.evidence.through.objects.bulk_create(
            [
                AssessmentEntry.evidence.through(
                    assessmententry=e, evidence=evidence[i % len(evidence)]
                )
                for i, e in enumerate(entries)
            ]
        )

    check_list(team, "/api/v1/risk-assessments/", grow)


def test_measure_decisions_with_their_evidence(team):
    register(team, SIZES[1])
    pairs = [(s, measure) for s in ours(Service, team) for measure in CodeMeasure.objects.all()]
    version = CatalogueVersion.objects.get()
    evidence = Evidence.objects.bulk_create(
        [link(c, i, team["casey"]) for i, c in enumerate(cycles(team)[:5])]
    )

    def grow(n: int) -> None:
        have = MeasureDecision.objects.filter(service__provider__organisation=team["org"]).count()
        decisions = MeasureDecision.objects.bulk_create(
            [
                MeasureDecision(
                    service=service,
                    measure=measure,
                    decision=MeasureDecisionKind.ADOPTED,
                    detail="Generated.",
                    decided_by=(team["casey"], team["rita"])[i % 2],
                    decided_at=timezone.now(),
                    decided_against=version,
                )
                for i, (service, measure) in enumerate(pairs[have:n], start=have)
            ]
        )
        MeasureDecision.evidence.through.objects.bulk_create(
            [
                MeasureDecision.evidence.through(measuredecision=d, evidence=e)
                for d in decisions
                for e in evidence[:2]
            ]
        )

    check_list(team, "/api/v1/measure-decisions/", grow)


# --- Exports ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_the_exports_stream_with_constant_queries(team, kind):
    expected = {"rows": 0}

    def grow(n: int) -> None:
        register(team, n, events_per_obligation=1)
        expected["rows"] = n

    def measure() -> None:
        response = team["client"].get(f"/api/v1/obligations/export/{kind}/")
        assert response.status_code == 200
        assert response.streaming is True
        body = b"".join(response.streaming_content).decode("utf-8-sig")
        if kind == "csv":
            assert len(body.splitlines()) == 1 + expected["rows"]
        else:
            assert len(json.loads(body)["obligations"]) == expected["rows"]

    assert_constant_queries(grow, measure, SIZES)
