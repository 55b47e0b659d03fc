"""Risk assessments and Ofcom's Codes measures: harm kinds as data, rated row by row; the
measures a service is recommended; decisions that gate the safety duties; regulatory change
opening cycles on exactly the affected services; printable records."""

import copy
import datetime as dt
import hashlib
import io
import json

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse

from obligations.access.users import get_system_user
from obligations.assessments.actions import (
    AssessmentError,
    decide_measure,
    rate_entry,
    start_assessment,
)
from obligations.assessments.models import MeasureDecision, MeasureDecisionKind, RiskAssessment
from obligations.assessments.selectors import (
    recommended_measures,
    recommended_measures_of,
    undecided_measures,
    unrated_entries,
)
from obligations.catalogue.loading import load_catalogue
from obligations.catalogue.models import CodeMeasure, Duty, Exemption, Feature, HarmKind
from obligations.catalogue.rules import CatalogueError, parse_catalogue
from obligations.providers.actions import save_service
from obligations.register.actions import set_due_date
from obligations.register.evidence import add_evidence_link
from obligations.register.models import Event, ObligationCycle
from obligations.register.states import CycleStatus, CycleTrigger, EventSource, TransitionError
from obligations.register.workflow import do_approve, do_start, do_submit_for_review
from tests.conftest import LONDON, TODAY
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member
from tests.helpers import admin_form_data

ADMIN = EventSource.ADMIN


@pytest.fixture
def team(catalogue):  # type: ignore[no-untyped-def]
    org = OrganisationFactory(name="Acme Group")
    return {
        "org": org,
        "assessor": member(org, username="casey"),
        "reviewer": member(org, username="robin"),
        "provider": ProviderFactory(organisation=org, name="Acme"),
    }


def cycle_of(service, code):  # type: ignore[no-untyped-def]
    return service.obligations.get(duty__code=code).current_cycle


def rate_all(assessment, actor, ratings=None, skip=()):  # type: ignore[no-untyped-def]
    """Rate every row (low/low unless `ratings` gives a harm's (likelihood, impact))."""
    for entry in assessment.entries.select_related("harm_kind"):
        if entry.harm_kind.code in skip:
            continue
        likelihood, impact = (ratings or {}).get(entry.harm_kind.code, ("low", "low"))
        rate_entry(
            actor=actor,
            entry=entry,
            likelihood=likelihood,
            impact=impact,
            rationale=f"Reasoned rating of {entry.harm_kind.code}.",
        )


def to_review(cycle, actor):  # type: ignore[no-untyped-def]
    add_evidence_link(
        actor=actor, cycle=cycle, url="https://example.test/doc", title="Doc", source=ADMIN
    )
    cycle = do_start(actor=actor, cycle=cycle, source=ADMIN)
    return do_submit_for_review(actor=actor, cycle=cycle, source=ADMIN)


# --- Harm kinds and assessments --------------------------------------------


def test_an_illegal_content_assessment_rates_every_kind_in_force(team):
    service = applied_service(provider=team["provider"])
    assessment = start_assessment(
        actor=team["assessor"], cycle=cycle_of(service, "U2U-ILLEGAL-RA"), source=ADMIN
    )
    codes = set(assessment.entries.values_list("harm_kind__code", flat=True))
    # 18 kinds after 8 Jan 2026, CSEA rated in three parts; "suicide" became
    # "suicide and self-harm" and cyberflashing was added.
    assert len(codes) == 20
    assert {"suicide_self_harm", "cyberflashing", "csea_grooming"} <= codes
    assert "suicide" not in codes
    groups = set(HarmKind.objects.filter(code__in=codes).values_list("group", flat=True))
    assert len(groups) == 18


def test_an_assessment_started_before_the_2026_change_rates_the_17_kinds(team):
    service = applied_service(provider=team["provider"])
    cycle = cycle_of(service, "U2U-ILLEGAL-RA")
    with time_machine.travel(dt.datetime(2025, 12, 1, 10, tzinfo=LONDON), tick=False):
        assessment = start_assessment(actor=team["assessor"], cycle=cycle, source=ADMIN)
    codes = set(assessment.entries.values_list("harm_kind__code", flat=True))
    assert "suicide" in codes and "suicide_self_harm" not in codes
    assert "cyberflashing" not in codes
    groups = set(HarmKind.objects.filter(code__in=codes).values_list("group", flat=True))
    assert len(groups) == 17


def test_a_childrens_assessment_has_a_row_per_harm_and_age_group(team):
    service = applied_service(provider=team["provider"], children_likely_to_access=True)
    assessment = start_assessment(
        actor=team["assessor"], cycle=cycle_of(service, "U2U-CHILD-RA"), source=ADMIN
    )
    rows = assessment.entries.select_related("harm_kind")
    families = {e.harm_kind.family for e in rows}
    assert families == {"children_ppc", "children_pc", "children_ndc"}
    assert rows.count() == 14 * 5
    assert set(rows.values_list("age_group", flat=True)) == {
        "0-5",
        "6-9",
        "10-12",
        "13-15",
        "16-17",
    }


def test_the_level_comes_from_the_matrix_and_bad_ratings_are_refused(team):
    service = applied_service(provider=team["provider"])
    assessment = start_assessment(
        actor=team["assessor"], cycle=cycle_of(service, "U2U-ILLEGAL-RA"), source=ADMIN
    )
    entry = assessment.entries.get(harm_kind__code="terrorism")
    entry = rate_entry(
        actor=team["assessor"], entry=entry, likelihood="high", impact="medium", rationale="x"
    )
    assert entry.level == "high"
    with pytest.raises(AssessmentError, match="Likelihood must be one of low, medium"):
        rate_entry(
            actor=team["assessor"], entry=entry, likelihood="huge", impact="low", rationale="x"
        )
    stranger = applied_service(provider=ProviderFactory(organisation=OrganisationFactory()))
    theirs = add_evidence_link(
        actor=team["assessor"],
        cycle=cycle_of(stranger, "U2U-RECORDS"),
        url="https://example.test/theirs",
        title="Theirs",
        source=ADMIN,
    )
    with pytest.raises(AssessmentError, match="this service's own"):
        rate_entry(
            actor=team["assessor"],
            entry=entry,
            likelihood="low",
            impact="low",
            rationale="x",
            evidence=[theirs],
        )


def test_an_incomplete_assessment_is_refused_naming_what_is_missing(team):
    service = applied_service(provider=team["provider"])
    cycle = cycle_of(service, "U2U-ILLEGAL-RA")
    cycle = to_review(cycle, team["assessor"])
    with pytest.raises(TransitionError, match="without its risk assessment"):
        do_approve(actor=team["reviewer"], cycle=cycle, source=ADMIN)
    assessment = start_assessment(actor=team["assessor"], cycle=cycle, source=ADMIN)
    rate_all(assessment, team["assessor"], skip=("cyberflashing", "fraud"))
    with pytest.raises(TransitionError) as refused:
        do_approve(actor=team["reviewer"], cycle=cycle, source=ADMIN)
    message = str(refused.value)
    assert "Missing: Cyberflashing; Fraud and financial offences." in message
    # A level without a rationale is still missing.
    entry = assessment.entries.get(harm_kind__code="fraud")
    rate_entry(actor=team["assessor"], entry=entry, likelihood="low", impact="low", rationale=" ")
    with pytest.raises(TransitionError, match="Fraud and financial offences"):
        do_approve(actor=team["reviewer"], cycle=cycle, source=ADMIN)


def test_a_complete_assessment_meets_its_cycle_with_four_eyes(team):
    service = applied_service(provider=team["provider"])
    cycle = to_review(cycle_of(service, "U2U-ILLEGAL-RA"), team["reviewer"])
    assessment = start_assessment(actor=team["assessor"], cycle=cycle, source=ADMIN)
    rate_all(assessment, team["assessor"])
    with pytest.raises(TransitionError, match="the assessor cannot approve"):
        do_approve(actor=team["assessor"], cycle=cycle, source=ADMIN)
    third = member(team["org"], username="sam")
    cycle = do_approve(actor=third, cycle=cycle, source=ADMIN)
    assert cycle.status == CycleStatus.MET
    assessment.refresh_from_db()
    assert assessment.approver == third and assessment.approved_at is not None
    # The record of a met cycle is frozen.
    with pytest.raises(AssessmentError, match="is a record now"):
        rate_entry(
            actor=team["assessor"],
            entry=assessment.entries.first(),
            likelihood="high",
            impact="high",
            rationale="later",
        )


# --- End-to-end encryption and CSEA ------------------------------------------

CSEA_ROWS = [
    "CSEA: CSAM URLs",
    "CSEA: grooming",
    "CSEA: image-based child sexual abuse material",
]
CHANNELS = "Assessed from in-chat reports, account signals and NCA referrals."


def factors_by_row(assessment):  # type: ignore[no-untyped-def]
    entries = assessment.entries.select_related("harm_kind").prefetch_related("risk_factors")
    return {e.harm_kind.label: {f.code for f in e.risk_factors.all()} for e in entries}


def rate(entry, actor, **given):  # type: ignore[no-untyped-def]
    """Rate a row low/low, keeping the risk factors already on it unless given."""
    given.setdefault("risk_factors", list(entry.risk_factors.all()))
    return rate_entry(
        actor=actor, entry=entry, likelihood="low", impact="low", rationale="Reasoned.", **given
    )


def test_an_encrypted_service_has_the_encrypted_messaging_factor_on_its_csea_rows(team):
    chat = applied_service(provider=team["provider"], name="Chat", features=["e2ee_messaging"])
    plain = applied_service(provider=team["provider"], name="Plain", features=["direct_messaging"])
    started = {
        s.name: start_assessment(
            actor=team["assessor"], cycle=cycle_of(s, "U2U-ILLEGAL-RA"), source=ADMIN
        )
        for s in (chat, plain)
    }
    rows = factors_by_row(started["Chat"])
    assert sorted(label for label, f in rows.items() if "encrypted_messaging" in f) == CSEA_ROWS
    assert not any(factors_by_row(started["Plain"]).values())
    event = cycle_of(chat, "U2U-ILLEGAL-RA").events.get(reason__startswith="Risk factor")
    assert event.reason == (
        "Risk factor “Encrypted messaging” selected on CSEA: CSAM URLs; CSEA: grooming; CSEA: "
        "image-based child sexual abuse material: the service's features bring it (catalogue "
        "rule)."
    )
    assert event.actor == team["assessor"]


def test_a_csea_row_of_an_encrypted_service_is_rated_only_covering_private_channels(team):
    chat = applied_service(provider=team["provider"], name="Chat", features=["e2ee_messaging"])
    assessment = start_assessment(
        actor=team["assessor"], cycle=cycle_of(chat, "U2U-ILLEGAL-RA"), source=ADMIN
    )
    grooming = assessment.entries.get(harm_kind__code="csea_grooming")
    with pytest.raises(AssessmentError) as refused:
        rate(grooming, team["assessor"])
    assert str(refused.value).startswith(
        "CSEA: grooming: with the risk factor “Encrypted messaging”, “private and encrypted "
        "channels” must be filled in: How the risk of this harm in private and end-to-end"
    )
    with pytest.raises(AssessmentError, match="keep the risk factor “Encrypted messag"):
        rate(grooming, team["assessor"], risk_factors=[], private_channels=CHANNELS)
    grooming.refresh_from_db()
    assert grooming.level == ""  # nothing was saved
    rated = rate(grooming, team["assessor"], private_channels=f"  {CHANNELS} ")
    assert (rated.level, rated.private_channels) == ("low", CHANNELS)
    # Rows outside the rule are rated as before.
    rate(assessment.entries.get(harm_kind__code="fraud"), team["assessor"])


def test_the_cycle_is_not_met_until_csea_rows_cover_encrypted_channels_after_e2ee_arrives(team):
    """A service that adds end-to-end encryption while its assessment is open: the CSEA rows
    already rated gain the factor, and approval is refused naming them until each says how
    the risk in encrypted channels was assessed."""
    chat = applied_service(provider=team["provider"], name="Chat", features=["direct_messaging"])
    cycle = to_review(cycle_of(chat, "U2U-ILLEGAL-RA"), team["reviewer"])
    assessment = start_assessment(actor=team["assessor"], cycle=cycle, source=ADMIN)
    rate_all(assessment, team["assessor"])
    save_service(
        actor=team["assessor"],
        service=chat,
        source=ADMIN,
        features=Feature.objects.filter(code__in=["direct_messaging", "e2ee_messaging"]),
    )
    rows = factors_by_row(assessment)
    assert sorted(label for label, f in rows.items() if "encrypted_messaging" in f) == CSEA_ROWS
    third = member(team["org"], username="sam")
    with pytest.raises(TransitionError) as refused:
        do_approve(actor=third, cycle=cycle, source=ADMIN)
    message = str(refused.value)
    assert message.startswith(
        "The risk assessment does not yet cover private and end-to-end encrypted channels "
        "where the catalogue requires it: CSEA: CSAM URLs; CSEA: grooming; CSEA: image-based "
        "child sexual abuse material: with the risk factor “Encrypted messaging”, “private and "
        "encrypted channels” must be filled in: How the risk"
    )
    assert "Fraud" not in message
    for entry in assessment.entries.filter(harm_kind__group="csea"):
        rate(entry, team["assessor"], private_channels=CHANNELS)
    cycle = do_approve(actor=third, cycle=cycle, source=ADMIN)
    assert cycle.status == CycleStatus.MET
    # A closed record is never changed by a later profile change.
    save_service(
        actor=team["assessor"], service=chat, source=ADMIN, features=Feature.objects.none()
    )
    assert factors_by_row(assessment) == rows


def test_the_admin_shows_the_private_channels_rule_on_the_row_and_the_record(client, team):
    chat = applied_service(provider=team["provider"], name="Chat", features=["e2ee_messaging"])
    assessment = start_assessment(
        actor=team["assessor"], cycle=cycle_of(chat, "U2U-ILLEGAL-RA"), source=ADMIN
    )
    client.force_login(team["assessor"])
    url = reverse("admin:obligations_riskassessment_change", args=[assessment.pk])
    page = client.get(url)
    assert "How the risk of this harm in private and end-to-end encrypted" in page.content.decode()
    data = admin_form_data(page)
    entry = assessment.entries.get(harm_kind__code="csea_image")
    index = list(assessment.entries.values_list("pk", flat=True)).index(entry.pk)
    data.update(
        {
            f"entries-{index}-likelihood": "medium",
            f"entries-{index}-impact": "high",
            f"entries-{index}-rationale": "Image sharing in chats.",
        }
    )
    refused = client.post(url, data)
    assert refused.status_code == 200
    assert "With the risk factor “Encrypted messaging”" in refused.content.decode()
    entry.refresh_from_db()
    assert entry.level == ""
    data[f"entries-{index}-private_channels"] = CHANNELS
    assert client.post(url, data).status_code == 302
    entry.refresh_from_db()
    assert (entry.level, entry.private_channels) == ("high", CHANNELS)
    record = client.get(reverse("assessment-record", args=[assessment.pk])).content.decode()
    assert f"<strong>Private and encrypted channels:</strong> {CHANNELS}" in record
    assert (
        "Private and encrypted channels not yet covered:</strong> CSEA: CSAM URLs; CSEA: grooming: "
        "with the risk factor" in record
    )
    obligation = reverse(
        "admin:obligations_obligation_change", args=[cycle_of(chat, "U2U-ILLEGAL-RA").obligation_id]
    )
    assert (
        "Private and encrypted channels not yet covered" in client.get(obligation).content.decode()
    )


# --- Recommended measures ---------------------------------------------------


def levels_for(service, actor, ratings):  # type: ignore[no-untyped-def]
    assessment = start_assessment(
        actor=actor, cycle=cycle_of(service, "U2U-ILLEGAL-RA"), source=ADMIN
    )
    rate_all(assessment, actor, ratings)
    return {r.code: r for r in recommended_measures(service, TODAY)}


def team_service(team, name: str, users: int, **declared):  # type: ignore[no-untyped-def]
    """A service of the team's provider with `users` monthly UK users, catalogue applied."""
    return applied_service(provider=team["provider"], name=name, uk_monthly_users=users, **declared)


def test_recommended_measures_differ_between_small_single_risk_and_large_multi_risk(team):
    small = team_service(team, "Small", 50_000)
    large = team_service(team, "Large", 9_000_000, features=["file_sharing"])
    before = {r.code: r for r in recommended_measures(small, TODAY)}
    assert before["ICU C1"].recommended is True  # every service
    assert before["ICU C3"].recommended is None  # large or multi-risk: not assessed yet
    assert "Depends on the risk assessment" in before["ICU C3"].why
    small_recs = levels_for(small, team["assessor"], {"hate": ("high", "high")})
    large_recs = levels_for(
        large,
        team["assessor"],
        {"hate": ("high", "high"), "fraud": ("medium", "high"), "csea_image": ("high", "medium")},
    )
    recommended = {code for code, r in small_recs.items() if r.recommended}
    large_recommended = {code for code, r in large_recs.items() if r.recommended}
    # Small, single-risk: the all-services measures and D9 (neither large nor multi-risk).
    assert {"ICU A2", "ICU C1", "ICU C2", "ICU D9", "ICU D4"} <= recommended
    assert not {"ICU A1", "ICU C3", "ICU D8", "ICU C9", "ICU D14"} & recommended
    # Large and multi-risk: governance, moderation policy, fuller appeals, hash matching.
    assert {"ICU A1", "ICU A4", "ICU C3", "ICU D8", "ICU C9", "ICU D14"} <= large_recommended
    assert "ICU D9" not in large_recommended
    assert "large: 9,000,000 monthly UK users" in large_recs["ICU A1"].why
    assert (
        "high or higher risk of CSEA: image-based child sexual abuse material"
        in large_recs["ICU C9"].why
    )
    # Laid, not yet in force: listed, not recommended, saying so.
    assert large_recs["ICU C15"].recommended is False
    assert large_recs["ICU C15"].why == "laid, not in force"


@pytest.mark.parametrize(
    ("ratings", "multi", "kinds"),
    [
        # Worked examples of ICU para 5.6: two or more kinds at medium or high, Table C rows
        # 2A-2C (CSEA's parts) not counted on top of CSEA (row 2).
        ({"hate": ("medium", "medium")}, False, "1 kind(s) (Hate)"),
        (
            {"csea_grooming": ("medium", "medium"), "csea_image": ("high", "high")},
            False,
            "1 kind(s) (CSEA)",
        ),
        (
            {
                "csea_grooming": ("high", "high"),
                "csea_image": ("medium", "medium"),
                "csea_urls": ("high", "medium"),
            },
            False,
            "1 kind(s) (CSEA)",
        ),
        (
            {"csea_urls": ("medium", "medium"), "hate": ("medium", "medium")},
            True,
            "2 kind(s) (CSEA, Hate)",
        ),
        ({"fraud": ("high", "medium"), "hate": ("medium", "medium")}, True, "2 kind(s)"),
        (
            {"fraud": ("low", "high")},
            False,
            "1 kind(s) (Fraud and financial offences)",
        ),  # low x high: medium
        ({"fraud": ("low", "medium")}, False, "0 kind(s)"),
    ],
)
def test_multi_risk_counts_kinds_of_illegal_harm_with_csea_once(team, ratings, multi, kinds):
    service = team_service(team, "Chat", 50_000)
    found = levels_for(service, team["assessor"], ratings)
    # ICU C3 is for large or multi-risk services, D9 for those neither large nor multi-risk.
    assert (found["ICU C3"].recommended, found["ICU D9"].recommended) == (multi, not multi)
    why = found["ICU C3"].why if multi else found["ICU D9"].why
    assert f"medium or higher risk for {kinds}" in why


def test_complaint_acknowledgements_are_for_large_services_or_any_medium_risk(team):
    """ICU D4 and D6 are for services that are large or at medium or high risk of any kind of
    illegal harm: size alone brings them, before any assessment; D3 and D5 also need children
    likely to access the service."""
    large = team_service(team, "Large", 9_000_000, children_likely_to_access=False)
    small = team_service(team, "Small", 50_000, children_likely_to_access=False)
    risky = team_service(team, "Risky", 50_000, children_likely_to_access=False)
    before = {r.code: r for r in recommended_measures(large, TODAY)}
    assert (before["ICU D4"].recommended, before["ICU D6"].recommended) == (True, True)
    assert "large: 9,000,000 monthly UK users" in before["ICU D4"].why
    all_low = levels_for(large, team["assessor"], {})
    assert (all_low["ICU D4"].recommended, all_low["ICU D6"].recommended) == (True, True)
    assert (all_low["ICU D3"].recommended, all_low["ICU D5"].recommended) == (False, False)
    small_recs = levels_for(small, team["assessor"], {})
    assert (small_recs["ICU D4"].recommended, small_recs["ICU D6"].recommended) == (False, False)
    risky_recs = levels_for(risky, team["assessor"], {"fraud": ("medium", "medium")})
    assert (risky_recs["ICU D4"].recommended, risky_recs["ICU D6"].recommended) == (True, True)
    assert "medium or higher risk of Fraud and financial offences" in risky_recs["ICU D6"].why


def test_a_feature_or_a_register_category_brings_its_measures(team):
    """ICU E1 is for services with a recommender system and ICU G2 for Category 1 ones:
    recommended by what the service declares, whatever its size and risks."""
    plain = team_service(team, "Plain", 50_000)
    declared = team_service(team, "Declared", 50_000, features=["recommender"], categories=["1"])
    found = recommended_measures_of([plain.pk, declared.pk], TODAY)
    verdicts = {sid: {r.code: r.recommended for r in found[sid]} for sid in found}
    assert (verdicts[plain.pk]["ICU E1"], verdicts[plain.pk]["ICU G2"]) == (False, False)
    assert (verdicts[declared.pk]["ICU E1"], verdicts[declared.pk]["ICU G2"]) == (True, True)


def test_age_assurance_measures_follow_all_primary_priority_content_not_only_pornography(team):
    """PCU B2 is for a service whose principal purpose is primary priority content; B4 for
    one where B2 does not apply and some kind of it (pornography, suicide, self-injury or
    eating-disorder content, s.61) is allowed, or prohibited but cannot all be taken down;
    B1 wherever age assurance is used for them."""
    profiles = {
        "Plain": [],
        "Porn site": ["ppc_principal_purpose"],
        "Social with adult content": ["user_pornography"],
        "Recovery forum": ["ppc_not_prohibited"],  # allows self-injury discussion for adults
        "Strict but leaky": ["ppc_takedown_not_feasible"],
    }
    made = {
        name: team_service(team, name, 50_000, children_likely_to_access=True, features=features)
        for name, features in profiles.items()
    }
    found = recommended_measures_of([s.pk for s in made.values()], TODAY)
    verdicts = {
        name: tuple({r.code: r.recommended for r in found[s.pk]}[c] for c in ("PCU B2", "PCU B4"))
        for name, s in made.items()
    }
    assert verdicts == {
        "Plain": (False, False),
        "Porn site": (True, False),
        "Social with adult content": (False, True),
        "Recovery forum": (False, True),
        "Strict but leaky": (False, True),
    }
    b1 = {name: {r.code: r for r in found[s.pk]}["PCU B1"] for name, s in made.items()}
    assert all(b1[name].recommended for name in profiles if name != "Plain")
    # Without age assurance for primary priority content, B1 waits on the children's risk
    # assessment (PCU B5 brings it for medium or high risk of priority content).
    assert b1["Plain"].recommended is None
    named = "has \u2018Primary priority content not prohibited for all users\u2019"
    assert named in b1["Recovery forum"].why


# --- Decisions gate the safety duties ---------------------------------------


def decide_all(service, actor, duty_code, evidence):  # type: ignore[no-untyped-def]
    for code in undecided_measures(service, Duty.objects.get(code=duty_code)):
        decide_measure(
            actor=actor,
            service=service,
            measure=CodeMeasure.objects.get(code=code),
            decision=MeasureDecisionKind.ADOPTED,
            detail="",
            evidence=[evidence],
        )


def test_a_safety_duty_cycle_waits_for_a_decision_on_every_recommended_measure(team):
    service = applied_service(provider=team["provider"], uk_monthly_users=50_000)
    cycle = to_review(cycle_of(service, "U2U-ILLEGAL-SAFETY"), team["assessor"])
    with pytest.raises(TransitionError) as refused:
        do_approve(actor=team["reviewer"], cycle=cycle, source=ADMIN)
    assert "no decision: ICU A2, ICU C1, ICU C2" in str(refused.value)
    evidence = cycle.evidence.get()
    decide_all(service, team["assessor"], "U2U-ILLEGAL-SAFETY", evidence)
    cycle = do_approve(actor=team["reviewer"], cycle=cycle, source=ADMIN)
    assert cycle.status == CycleStatus.MET


def test_each_kind_of_decision_needs_what_the_act_asks(team):
    service = applied_service(provider=team["provider"])
    measure = CodeMeasure.objects.get(code="ICU G3")
    decide = decide_measure
    with pytest.raises(AssessmentError, match="adopted measure needs evidence"):
        decide(
            actor=team["assessor"], service=service, measure=measure, decision="adopted", detail=""
        )
    with pytest.raises(AssessmentError, match="how it meets the duty"):
        decide(
            actor=team["assessor"],
            service=service,
            measure=measure,
            decision="alternative",
            detail="",
        )
    with pytest.raises(AssessmentError, match="needs the reason"):
        decide(
            actor=team["assessor"],
            service=service,
            measure=measure,
            decision="not_applicable",
            detail=" ",
        )
    first = decide(
        actor=team["assessor"],
        service=service,
        measure=measure,
        decision="alternative",
        detail="An in-app walkthrough instead of one page.",
    )
    decide(
        actor=team["reviewer"],
        service=service,
        measure=measure,
        decision="not_applicable",
        detail="The terms moved to the provider's site.",
    )
    first.refresh_from_db()
    assert first.decision == "not_applicable"
    assert [h.decision for h in first.history.all()] == ["not_applicable", "alternative"]  # type: ignore[attr-defined]


# --- Regulatory change ------------------------------------------------------


def changed_catalogue(catalogue_file, change):  # type: ignore[no-untyped-def]
    data = copy.deepcopy(
        {
            k: getattr(catalogue_file, k)
            for k in (
                "features",
                "categories",
                "exemptions",
                "duties",
                "parameters",
                "notice_powers",
                "harm_kinds",
                "risk_factors",
                "measures",
            )
        }
    )
    data["version"] = "2027.01.1"
    data["published"] = "2027-01-10"
    change(data)
    raw = json.dumps(data, sort_keys=True).encode()
    return parse_catalogue(data, sha256=hashlib.sha256(raw).hexdigest())


def test_adding_a_harm_kind_opens_cycles_on_exactly_the_affected_services(team, catalogue_file):
    u2u = applied_service(provider=team["provider"], name="Chat")
    search = applied_service(
        provider=team["provider"], name="Finder", user_to_user=False, search=True
    )
    exempt = applied_service(
        provider=team["provider"],
        name="Intranet",
        exemption=Exemption.objects.get(code="internal_business"),
    )
    met = cycle_of(u2u, "U2U-ILLEGAL-RA")
    assessment = start_assessment(actor=team["assessor"], cycle=met, source=ADMIN)
    rate_all(assessment, team["assessor"])
    met = to_review(met, team["reviewer"])
    do_approve(actor=member(team["org"], username="sam"), cycle=met, source=ADMIN)

    def add_kind(data):  # type: ignore[no-untyped-def]
        data["harm_kinds"].append(
            {
                **data["harm_kinds"][0],
                "code": "new_offence",
                "label": "A new priority offence",
                "group": "new_offence",
                "assessments": ["illegal_u2u"],
                "effective_from": "2027-01-01",
                "assess_by": "2027-03-31",
                "source": "SI 2026/9999",
            }
        )

    diff = load_catalogue(
        actor=get_system_user(), catalogue=changed_catalogue(catalogue_file, add_kind)
    )
    assert diff.harms_added == ["new_offence"]
    chat = u2u.obligations.get(duty__code="U2U-ILLEGAL-RA")
    new = chat.current_cycle
    assert new.pk != met.pk and new.trigger == CycleTrigger.REGULATORY_CHANGE
    assert new.due_date == dt.date(2027, 3, 31)
    assert "adds the harm kind “A new priority offence” (SI 2026/9999)" in new.trigger_note
    # The search service's assessment does not rate it; the exempt service owes none.
    finder = search.obligations.get(duty__code="SEARCH-ILLEGAL-RA").current_cycle
    assert finder.trigger == CycleTrigger.INITIAL
    assert not exempt.obligations.filter(duty__code="U2U-ILLEGAL-RA", applicable=True).exists()
    opened = ObligationCycle.objects.filter(trigger=CycleTrigger.REGULATORY_CHANGE)
    assert list(opened.values_list("obligation__service__name", flat=True)) == ["Chat"]
    # Loading the same version again changes nothing.
    load_catalogue(actor=get_system_user(), catalogue=changed_catalogue(catalogue_file, add_kind))
    assert opened.count() == 1


def test_an_open_assessment_gains_the_new_kind_and_its_cycle_is_brought_forward(
    team, catalogue_file
):
    service = applied_service(provider=team["provider"])
    cycle = cycle_of(service, "U2U-ILLEGAL-RA")
    set_due_date(
        actor=team["assessor"], cycle=cycle, due=dt.date(2027, 9, 1), reason="", source=ADMIN
    )
    assessment = start_assessment(actor=team["assessor"], cycle=cycle, source=ADMIN)

    def add_kind(data):  # type: ignore[no-untyped-def]
        data["harm_kinds"].append(
            {
                **data["harm_kinds"][0],
                "code": "new_offence",
                "label": "New",
                "group": "new_offence",
                "effective_from": "2026-11-01",
                "assessments": ["illegal_u2u"],
            }
        )

    load_catalogue(actor=get_system_user(), catalogue=changed_catalogue(catalogue_file, add_kind))
    cycle.refresh_from_db()
    assert cycle.due_date == TODAY + dt.timedelta(days=90)  # house policy, from the catalogue
    assert assessment.entries.filter(harm_kind__code="new_offence").exists()


def test_a_changed_measure_needs_deciding_again_where_it_is_recommended(team, catalogue_file):
    service = applied_service(provider=team["provider"], uk_monthly_users=50_000)
    decide_measure(
        actor=team["assessor"],
        service=service,
        measure=CodeMeasure.objects.get(code="ICU G3"),
        decision="alternative",
        detail="An in-app walkthrough.",
    )

    applied_service(provider=team["provider"], name="Finder", user_to_user=False, search=True)

    def change(data):  # type: ignore[no-untyped-def]
        measure = next(x for x in data["measures"] if x["code"] == "ICU G3")
        measure["summary"] = "The terms are clear, accessible and tested with users"

    diff = load_catalogue(
        actor=get_system_user(), catalogue=changed_catalogue(catalogue_file, change)
    )
    assert diff.measures_changed == ["ICU G3"]
    assert "ICU G3" in undecided_measures(service, Duty.objects.get(code="U2U-ILLEGAL-SAFETY"))
    # Its open safety cycle (already overdue) keeps its date, and the change is on record;
    # a service the measure is not recommended for is left alone.
    safety = cycle_of(service, "U2U-ILLEGAL-SAFETY")
    assert safety.events.filter(reason__contains="changes Ofcom's measure ICU G3").exists()
    assert list(
        Event.objects.filter(reason__contains="ICU G3")
        .values_list("obligation__service", flat=True)
        .distinct()
    ) == [service.pk]


# --- When a measure comes into force ----------------------------------------


def test_a_measure_is_in_force_21_days_after_its_code_was_issued_never_from_laying(catalogue):
    """s.43(4)(b): in force at the end of the 21 days beginning with the day Ofcom issue the
    code. The Illegal Content Codes were issued on 24 Feb 2025 (in force 17 Mar 2025), the
    Protection of Children Code on 4 Jul 2025 (in force 25 Jul 2025). A code laid before
    Parliament but not issued has no in-force date: laying starts only the 40-day period."""
    dates = dict(CodeMeasure.objects.values_list("code", "issued_on"))
    starts = dict(CodeMeasure.objects.values_list("code", "effective_from"))
    assert (dates["ICU A2"], starts["ICU A2"]) == (dt.date(2025, 2, 24), dt.date(2025, 3, 17))
    assert (dates["PCU A2"], starts["PCU A2"]) == (dt.date(2025, 7, 4), dt.date(2025, 7, 25))
    assert (dates["ICU C14"], starts["ICU C14"]) == (dt.date(2026, 9, 9), dt.date(2026, 9, 30))
    # ICU C15 was laid on 18 Jun 2026: 18 Jun + 21 days (9 Jul) is not when it comes into force.
    assert (dates["ICU C15"], starts["ICU C15"]) == (None, None)
    for status, issued, start in CodeMeasure.objects.values_list(
        "status", "issued_on", "effective_from"
    ):
        assert start == (issued + dt.timedelta(days=21) if issued else None)
        assert (issued is not None) == (status == "in_force")


def test_a_measure_issued_less_than_21_days_ago_is_listed_with_its_date(team, catalogue_file):
    service = team_service(team, "Chat", 50_000)

    def issue(data):  # type: ignore[no-untyped-def]
        measure = next(x for x in data["measures"] if x["code"] == "ICU C15")
        measure.update(status="in_force", issued_on="2026-11-10", recommended_for={})

    load_catalogue(actor=get_system_user(), catalogue=changed_catalogue(catalogue_file, issue))
    found = {r.code: r for r in recommended_measures(service, TODAY)}
    assert found["ICU C15"].recommended is False
    assert found["ICU C15"].why == "in force from 1 Dec 2026"
    later = {r.code: r for r in recommended_measures(service, dt.date(2026, 12, 1))}
    assert later["ICU C15"].recommended is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["measures"][0].pop("issued_on"),
            r"measures\[0\].issued_on: an in-force measure says when Ofcom issued its code",
        ),
        (
            lambda d: next(x for x in d["measures"] if x["status"] == "laid").update(
                issued_on="2026-06-18"
            ),
            "a laid or proposed measure has no issue date",
        ),
        (
            lambda d: d["measures"][0].update(effective_from="2025-03-17"),
            r"measures\[0\].effective_from: unknown field",
        ),
    ],
)
def test_a_measure_gives_its_issue_date_and_never_an_in_force_date(catalogue_file, change, message):
    with pytest.raises(CatalogueError, match=message):
        changed_catalogue(catalogue_file, change)


# --- Records, the admin, the demo -------------------------------------------


def test_the_printable_records_render_for_the_team_and_404_for_others(client, team):
    service = applied_service(provider=team["provider"], name="Chat")
    assessment = start_assessment(
        actor=team["assessor"], cycle=cycle_of(service, "U2U-ILLEGAL-RA"), source=ADMIN
    )
    rate_all(assessment, team["assessor"], skip=("fraud",))
    client.force_login(team["reviewer"])
    record = client.get(reverse("assessment-record", args=[assessment.pk]))
    body = record.content.decode()
    assert record.status_code == 200
    assert "Illegal content (user-to-user, s.9) risk assessment" in body
    assert "Incomplete:</strong> 1 row without a level and a rationale: Fraud" in body
    assert "@media print" in body and "Reasoned rating of terrorism." in body
    register = client.get(reverse("measures-record", args=[service.pk])).content.decode()
    assert "Measures register: Chat" in register and "ICU C1" in register
    client.force_login(member(OrganisationFactory(), username="stranger"))
    assert client.get(reverse("assessment-record", args=[assessment.pk])).status_code == 404
    assert client.get(reverse("measures-record", args=[service.pk])).status_code == 404


def test_rating_rows_and_deciding_measures_in_the_admin(client, team):
    service = applied_service(provider=team["provider"])
    obligation = service.obligations.get(duty__code="U2U-ILLEGAL-RA")
    client.force_login(team["assessor"])
    page = client.get(reverse("admin:obligations_obligation_change", args=[obligation.pk]))
    assert "Start the risk assessment" in page.content.decode()
    started = client.post(
        reverse("admin:obligations_obligation_start_assessment", args=[obligation.pk])
    )
    assessment = RiskAssessment.objects.get()
    url = reverse("admin:obligations_riskassessment_change", args=[assessment.pk])
    assert started["Location"] == url
    data = admin_form_data(client.get(url))
    entry = assessment.entries.get(harm_kind__code="hate")
    index = list(assessment.entries.values_list("pk", flat=True)).index(entry.pk)
    data.update(
        {
            f"entries-{index}-likelihood": "high",
            f"entries-{index}-impact": "medium",
            f"entries-{index}-rationale": "Hate reports are a fifth of all reports.",
            "understand_notes": "Reports, moderation data, Ofcom's Register of Risks.",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    entry.refresh_from_db()
    assessment.refresh_from_db()
    assert (entry.level, entry.updated_by) == ("high", team["assessor"])
    assert assessment.understand_notes.startswith("Reports")
    # Half a rating is refused, with the reason, and nothing is saved.
    data[f"entries-{index}-impact"] = ""
    refused = client.post(url, data)
    assert (
        refused.status_code == 200
        and "Rate both the likelihood and the impact" in refused.content.decode()
    )

    register = reverse("admin:obligations_service_measures", args=[service.pk])
    assert "ICU C1" in client.get(register).content.decode()
    measure = CodeMeasure.objects.get(code="ICU J3")
    row = f"m{measure.pk}"
    client.post(register, {f"{row}-decision": "not_applicable", f"{row}-detail": "No such scheme."})
    assert MeasureDecision.objects.get().detail == "No such scheme."
    response = client.post(register, {f"{row}-decision": "adopted", f"{row}-detail": ""})
    assert response.status_code == 200
    assert "An adopted measure needs evidence" in response.content.decode()
    assert MeasureDecision.objects.get().decision == "not_applicable"


def test_the_demo_has_a_complete_and_an_in_progress_assessment_and_every_decision(catalogue):
    call_command("load_demo", stdout=io.StringIO())
    assessments = {a.kind: a for a in RiskAssessment.objects.all()}
    assert unrated_entries(assessments["illegal_u2u"]) == []
    assert unrated_entries(assessments["children_u2u"])
    decisions = set(MeasureDecision.objects.values_list("decision", flat=True))
    assert decisions == {"adopted", "alternative", "not_applicable"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["measures"][0].update(recommended_for={"large": "yes"}),
            "recommended_for.large: must be true or false",
        ),
        (
            lambda d: d["measures"][0].update(
                recommended_for={"risk": {"harms": ["nope"], "at_least": "high"}}
            ),
            "must name a harm kind in harm_kinds",
        ),
        (lambda d: d["measures"][0].update(duties=["NOPE"]), "must name a duty in duties"),
        (
            lambda d: d["harm_kinds"][0].update(assessments=["illegal_u3u"]),
            'not "illegal_u3u"',
        ),
        (
            lambda d: d["parameters"]["assessment"]["matrix"]["low"].pop("high"),
            "matrix.low.high: the matrix needs a level for every impact",
        ),
    ],
)
def test_a_malformed_codes_catalogue_is_refused_naming_the_entry(catalogue_file, change, message):
    with pytest.raises(CatalogueError, match=message):
        changed_catalogue(catalogue_file, change)
