"""Every list in the API, and the register's exports, cost the same number of queries for a
few rows as for hundreds: nothing is fetched per row."""

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from obligations import models as m
from tests.bulk import make_register
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, member
from tests.helpers import assert_constant_queries
from tests.test_api import client_for

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
        m.Provider: "organisation",
        m.Service: "provider__organisation",
        m.Obligation: "provider__organisation",
        m.ObligationCycle: "obligation__provider__organisation",
    }[model]
    return model.objects.filter(**{path: team["org"]})


def register(team: dict[str, Any], obligations: int, **kwargs: Any) -> None:
    """Our register grown to `obligations` rows (owned by both members, with events)."""
    have = ours(m.Obligation, team).count()
    if obligations > have:
        make_register(
            organisation=team["org"],
            obligations=obligations - have,
            today=TODAY,
            owners=[team["casey"], team["rita"]],
            **kwargs,
        )


def cycles(team: dict[str, Any]) -> list[m.ObligationCycle]:
    return list(ours(m.ObligationCycle, team).select_related("obligation").order_by("pk"))


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
        have = m.Membership.objects.filter(user=team["casey"]).count()
        organisations = m.Organisation.objects.bulk_create(
            [m.Organisation(name=f"Group {i}") for i in range(have, n)]
        )
        m.Membership.objects.bulk_create(
            [
                m.Membership(user=team["casey"], organisation=o, role=m.Role.AUDITOR)
                for o in organisations
            ]
        )

    check_list(team, "/api/v1/organisations/", grow)


def test_providers_with_revenue_cap_and_exposure(team):
    register(team, 35, due_spread=(-30, 30))  # a provider with overdue obligations
    m.OfcomNotice.objects.create(
        service=ours(m.Service, team).first(), kind=m.ENFORCEMENT_KINDS[0], given_on=TODAY
    )

    def grow(n: int) -> None:
        have = ours(m.Provider, team).count()
        providers = m.Provider.objects.bulk_create(
            [m.Provider(organisation=team["org"], name=f"Provider {i}") for i in range(have, n)]
        )
        m.RevenuePeriod.objects.bulk_create(
            [
                m.RevenuePeriod(
                    provider=p,
                    start=dt.date(year, 1, 1),
                    end=dt.date(year, 12, 31),
                    amount_gbp=Decimal("300000000.00"),
                    basis=m.RevenueBasis.AUDITED,
                )
                for p in providers
                for year in (2024, 2025)
            ]
        )

    check_list(team, "/api/v1/providers/", grow)


def test_services_with_categories_features_and_exemption(team):
    categories = list(m.RegisterCategory.objects.all())
    features = list(m.Feature.objects.all())
    exemption = m.Exemption.objects.first()
    provider = m.Provider.objects.create(organisation=team["org"], name="Northwind")

    def grow(n: int) -> None:
        have = ours(m.Service, team).count()
        services = m.Service.objects.bulk_create(
            [
                m.Service(
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
        m.Service.categories.through.objects.bulk_create(
            [
                m.Service.categories.through(service=s, registercategory=categories[i % 3])
                for i, s in enumerate(services)
            ]
        )
        m.Service.features.through.objects.bulk_create(
            [
                m.Service.features.through(service=s, feature=f)
                for s in services
                for f in features[:3]
            ]
        )

    check_list(team, "/api/v1/services/", grow)


def test_duties(team):
    template = m.Duty.objects.first()
    in_catalogue = m.Duty.objects.count()

    def grow(n: int) -> None:
        have = m.Duty.objects.count()
        m.Duty.objects.bulk_create(
            [
                m.Duty(
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
    obligation = ours(m.Obligation, team).select_related("current_cycle").get()
    now = timezone.now()

    def grow(n: int) -> None:
        have = m.Event.objects.filter(obligation=obligation).count()
        m.Event.objects.bulk_create(
            [
                m.Event(
                    obligation=obligation,
                    cycle=obligation.current_cycle,
                    kind=m.EventKind.STATUS,
                    from_status=m.CycleStatus.NOT_STARTED,
                    to_status=m.CycleStatus.IN_PROGRESS,
                    actor=(team["casey"], team["rita"])[i % 2],
                    at=now - dt.timedelta(minutes=i),
                    reason="Generated.",
                    source=m.EventSource.API,
                )
                for i in range(have, n)
            ]
        )

    check_list(team, "/api/v1/events/", grow)


def link(cycle: m.ObligationCycle, i: int, by: Any) -> m.Evidence:
    return m.Evidence(
        cycle=cycle,
        kind=m.EvidenceKind.LINK,
        title=f"Link {i}",
        url=f"https://wiki.example.test/{i}",
        uploaded_by=by,
        uploaded_at=timezone.now(),
    )


def test_evidence(team):
    register(team, 35)
    all_cycles = cycles(team)

    def grow(n: int) -> None:
        have = m.Evidence.objects.filter(cycle__in=all_cycles).count()
        m.Evidence.objects.bulk_create(
            [
                link(all_cycles[i % len(all_cycles)], i, (team["casey"], team["rita"])[i % 2])
                for i in range(have, n)
            ]
        )

    check_list(team, "/api/v1/evidence/", grow)


def test_technology_notices(team):
    register(team, 35)
    services = list(ours(m.Service, team))

    def grow(n: int) -> None:
        have = m.TechnologyNotice.objects.filter(service__in=services).count()
        m.TechnologyNotice.objects.bulk_create(
            [
                m.TechnologyNotice(
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
    services = list(ours(m.Service, team))

    def grow(n: int) -> None:
        have = m.OfcomNotice.objects.filter(service__in=services).count()
        m.OfcomNotice.objects.bulk_create(
            [
                m.OfcomNotice(
                    service=services[i % len(services)],
                    kind=m.NoticeKind.PENALTY,
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
        have = m.Reminder.objects.filter(cycle__in=all_cycles).count()
        m.Reminder.objects.bulk_create(
            [
                m.Reminder(
                    cycle=all_cycles[i % len(all_cycles)],
                    kind=m.ReminderKind.DUE_SOON,
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
    harms = list(m.HarmKind.objects.all()[:3])
    factors = list(m.RiskFactor.objects.all()[:2])
    evidence = m.Evidence.objects.bulk_create(
        [link(c, i, team["casey"]) for i, c in enumerate(all_cycles[:5])]
    )

    def grow(n: int) -> None:
        have = m.RiskAssessment.objects.filter(cycle__in=all_cycles).count()
        assessments = m.RiskAssessment.objects.bulk_create(
            [
                m.RiskAssessment(
                    service_id=c.obligation.service_id,
                    kind=m.AssessmentKind.ILLEGAL_U2U,
                    cycle=c,
                    assessor=team["casey"],
                    approver=team["rita"],
                    started_on=TODAY,
                )
                for c in all_cycles[have:n]
            ]
        )
        entries = m.AssessmentEntry.objects.bulk_create(
            [
                m.AssessmentEntry(
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
        m.AssessmentEntry.risk_factors.through.objects.bulk_create(
            [
                m.AssessmentEntry.risk_factors.through(assessmententry=e, riskfactor=f)
                for e in entries
                for f in factors
            ]
        )
        m.AssessmentEntry.evidence.through.objects.bulk_create(
            [
                m.AssessmentEntry.evidence.through(
                    assessmententry=e, evidence=evidence[i % len(evidence)]
                )
                for i, e in enumerate(entries)
            ]
        )

    check_list(team, "/api/v1/risk-assessments/", grow)


def test_measure_decisions_with_their_evidence(team):
    register(team, SIZES[1])
    pairs = [(s, measure) for s in ours(m.Service, team) for measure in m.CodeMeasure.objects.all()]
    version = m.CatalogueVersion.objects.get()
    evidence = m.Evidence.objects.bulk_create(
        [link(c, i, team["casey"]) for i, c in enumerate(cycles(team)[:5])]
    )

    def grow(n: int) -> None:
        have = m.MeasureDecision.objects.filter(service__provider__organisation=team["org"]).count()
        decisions = m.MeasureDecision.objects.bulk_create(
            [
                m.MeasureDecision(
                    service=service,
                    measure=measure,
                    decision=m.MeasureDecisionKind.ADOPTED,
                    detail="Generated.",
                    decided_by=(team["casey"], team["rita"])[i % 2],
                    decided_at=timezone.now(),
                    decided_against=version,
                )
                for i, (service, measure) in enumerate(pairs[have:n], start=have)
            ]
        )
        m.MeasureDecision.evidence.through.objects.bulk_create(
            [
                m.MeasureDecision.evidence.through(measuredecision=d, evidence=e)
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
