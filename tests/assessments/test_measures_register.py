"""The measures register page: one form for every measure, grouped by Code and area; several
measures decided at once with one rationale, or any row on its own; a refusal records nothing,
keeps what was typed and says what is wrong beside the field; progress in one figure."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from obligations.access.models import Role
from obligations.assessments.actions import (
    ADOPTED_AS_THE_CODE_DESCRIBES,
    Decision,
    DecisionsRefused,
    decide_measure,
    decide_measures,
)
from obligations.assessments.models import MeasureDecision
from obligations.assessments.selectors import (
    measures_register,
    recommended_measures,
    register_progress,
)
from obligations.catalogue.models import CatalogueVersion, CodeMeasure, Duty
from obligations.register.evidence import add_evidence_link, purge_evidence
from obligations.register.models import Event
from obligations.register.states import EventSource
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member
from tests.helpers import assert_constant_queries, form_data
from tests.test_unchanged_forms import changed, everything
from tests.test_words import raw_values

ADMIN = EventSource.ADMIN


@pytest.fixture
def team(catalogue):  # type: ignore[no-untyped-def]
    org = OrganisationFactory(name="Acme Group")
    service = applied_service(
        provider=ProviderFactory(organisation=org, name="Acme"),
        name="Chat",
        uk_monthly_users=50_000,
    )
    casey = member(org, username="casey")
    safety = service.obligations.get(duty__code="U2U-ILLEGAL-SAFETY").current_cycle
    evidence = add_evidence_link(
        actor=casey, cycle=safety, url="https://wiki.test/manual", title="Manual", source=ADMIN
    )
    return {
        "org": org,
        "service": service,
        "casey": casey,
        "mona": member(org, Role.MANAGER, username="mona"),
        "evidence": evidence,
        "url": reverse("admin:obligations_service_measures", args=[service.pk]),
    }


def pks(*codes: str) -> list[str]:
    return [str(CodeMeasure.objects.get(code=code).pk) for code in codes]


def page_form(client, url):  # type: ignore[no-untyped-def]
    return form_data(client.get(url), "measures-form")


def test_the_page_is_one_form_grouped_by_code_and_area_with_progress(client, team):
    decide_measure(
        actor=team["casey"],
        service=team["service"],
        measure=CodeMeasure.objects.get(code="ICU J3"),
        decision="not_applicable",
        detail="No such scheme.",
    )
    client.force_login(team["casey"])
    response = client.get(team["url"])
    html = response.content.decode()
    assert "Not applicable</strong> <small>by casey, 24 Nov 2026</small>: No such scheme." in html
    assert html.count("<form") - html.count('id="logout-form"') == 1
    assert 'id="group-icu-governance-and-accountability"' in html
    assert "Illegal content Code, user-to-user services: Content moderation" in html
    progress = register_progress(response.context["groups"][0]["rows"])
    assert f"{progress.decided} of {progress.recommended} recommended decided" in html
    total = register_progress(measures_register(team["service"], TODAY))
    assert total.decided == 0 and total.recommended > 3
    assert f"0 of {total.recommended} recommended measures decided" in html
    assert raw_values("measures", html) == []  # no ISO date, None, True or False


def test_several_measures_are_adopted_with_one_rationale_in_one_submission(client, team):
    client.force_login(team["casey"])
    data = page_form(client, team["url"])
    chosen = ("ICU A2", "ICU C1", "ICU C2")
    data.update(
        selected=pks(*chosen),
        decision="adopted",
        detail="Run by the trust and safety team.",
        evidence=[str(team["evidence"].pk)],
    )
    response = client.post(team["url"], data, follow=True)
    assert "Recorded 3 decisions: ICU A2, ICU C1, ICU C2." in response.content.decode()
    decisions = MeasureDecision.objects.filter(service=team["service"])
    assert sorted(d.measure.code for d in decisions) == sorted(chosen)
    for decision in decisions:
        assert (decision.decision, decision.detail) == (
            "adopted",
            "Run by the trust and safety team.",
        )
        assert decision.decided_by == team["casey"]
        assert list(decision.evidence.all()) == [team["evidence"]]
        # Every history row the write made names the signed-in user.
        assert {h.history_user for h in decision.history.all()} == {team["casey"]}  # type: ignore[attr-defined]
    assert "3 of " in response.content.decode()


def test_a_refused_bulk_decision_records_nothing_and_keeps_every_selection_and_word(client, team):
    client.force_login(team["casey"])
    data = page_form(client, team["url"])
    g3 = pks("ICU G3")[0]
    data.update(
        selected=pks("ICU A2", "ICU C1"),
        decision="adopted",
        detail="",
        evidence=[str(team["evidence"].pk)],
        # a row changed on its own too: valid, but all or nothing.
        **{f"m{g3}-decision": "alternative", f"m{g3}-detail": "An in-app walkthrough."},
    )
    before = everything()
    response = client.post(team["url"], data)
    assert response.status_code == 200
    assert changed(before, everything()) == {}
    html = response.content.decode()
    bulk = response.context["bulk"]
    assert bulk.errors["detail"] == [
        "Type the rationale: it is recorded on the 2 selected measures."
    ]
    for pk in pks("ICU A2", "ICU C1"):
        assert f'value="{pk}" id="select-{pk}" checked' in html
    assert '<option value="adopted" selected>' in html
    assert "An in-app walkthrough." in html  # the row's words, in its (open) textarea
    assert 'id="refused"' in html


def test_each_refusal_names_the_measure_and_sits_beside_its_field(client, team):
    client.force_login(team["casey"])
    data = page_form(client, team["url"])
    g3 = pks("ICU G3")[0]
    data.update(
        selected=pks("ICU A2", "PCS A2"),
        decision="adopted",
        detail="Named in the board minutes.",
        **{f"m{g3}-decision": "alternative", f"m{g3}-detail": "  "},
    )
    response = client.post(team["url"], data)
    assert response.status_code == 200
    assert not MeasureDecision.objects.exists()
    bulk = response.context["bulk"]
    assert bulk.errors["evidence"] == [
        "ICU A2: An adopted measure needs evidence: choose at least one item.",
        "PCS A2: An adopted measure needs evidence: choose at least one item.",
    ]
    assert bulk.errors["selected"] == [
        "PCS A2: not a measure of a Code that applies to this service."
    ]
    row = next(
        r for g in response.context["groups"] for r in g["rows"] if r["measure"].code == "ICU G3"
    )
    assert row["open"]
    assert row["form"].errors["detail"] == [
        "An alternative measure needs how it meets the duty (recorded as s.23(4) requires)."
    ]


def test_a_row_is_decided_on_its_own_and_the_rest_left_alone(client, team):
    client.force_login(team["casey"])
    decide_measure(
        actor=team["casey"],
        service=team["service"],
        measure=CodeMeasure.objects.get(code="ICU C1"),
        decision="not_applicable",
        detail="No user content.",
    )
    data = page_form(client, team["url"])
    j3 = pks("ICU J3")[0]
    data.update({f"m{j3}-decision": "not_applicable", f"m{j3}-detail": "No such scheme."})
    response = client.post(team["url"], data, follow=True)
    assert "Recorded 1 decision: ICU J3." in response.content.decode()
    assert MeasureDecision.objects.get(measure__code="ICU J3").detail == "No such scheme."
    c1 = MeasureDecision.objects.get(measure__code="ICU C1")
    assert c1.history.count() == 1  # type: ignore[attr-defined]


def test_an_unchanged_submission_changes_nothing(client, team):
    client.force_login(team["casey"])
    for code in ("ICU A2", "ICU C1"):
        decide_measure(
            actor=team["casey"],
            service=team["service"],
            measure=CodeMeasure.objects.get(code=code),
            decision="adopted",
            detail="Line one.\nLine two.",
            evidence=[team["evidence"]],
        )
    before = everything()
    response = client.post(team["url"], page_form(client, team["url"]), follow=True)
    assert "Nothing to record" in response.content.decode()
    assert changed(before, everything()) == {}
    # Deciding them again just as they stand (as a browser sends the words) is no change.
    data = page_form(client, team["url"])
    data.update(
        selected=pks("ICU A2", "ICU C1"),
        decision="adopted",
        detail="Line one.\r\nLine two.",
        evidence=[str(team["evidence"].pk)],
    )
    response = client.post(team["url"], data, follow=True)
    assert "Nothing changed" in response.content.decode()
    assert changed(before, everything()) == {}
    assert not Event.objects.filter(at__gt=team["evidence"].uploaded_at).exists()
    # Evidence purged since it was cited stays cited: the unchanged rows do not drop it.
    ada = member(team["org"], Role.ADMIN, username="ada")
    purge_evidence(actor=ada, evidence=team["evidence"], reason="Retention.", source=ADMIN)
    before = everything()
    page = client.get(team["url"])
    assert "Manual (U2U-ILLEGAL-SAFETY) (purged)" in page.content.decode()
    client.post(team["url"], form_data(page, "measures-form"))
    assert changed(before, everything()) == {}


def test_another_organisation_gets_404_and_a_reader_cannot_decide(client, team):
    stranger = member(OrganisationFactory(), username="stranger")
    data = {"selected": pks("ICU A2"), "decision": "not_applicable", "detail": "No."}
    client.force_login(stranger)
    assert client.get(team["url"]).status_code == 404
    assert client.post(team["url"], data).status_code == 404
    client.force_login(team["mona"])
    page = client.get(team["url"])
    assert page.status_code == 200 and 'id="measures-form"' not in page.content.decode()
    assert client.post(team["url"], data).status_code == 403
    assert not MeasureDecision.objects.exists()


def test_decide_measures_is_all_or_nothing_and_names_the_actor(team):
    service, casey = team["service"], team["casey"]
    a2, c1 = CodeMeasure.objects.get(code="ICU A2"), CodeMeasure.objects.get(code="ICU C1")
    with pytest.raises(DecisionsRefused) as refused:
        decide_measures(
            actor=casey,
            service=service,
            decisions=[
                Decision(a2, "not_applicable", "No accountable person needed."),
                Decision(c1, "alternative", ""),
                Decision(c1, "not_applicable", "Twice."),
            ],
        )
    assert [(r.measure, r.field) for r in refused.value.refusals] == [
        ("ICU C1", "measure"),
        ("ICU C1", "detail"),
        ("ICU C1", "measure"),
    ]
    assert not MeasureDecision.objects.exists()
    written = decide_measures(
        actor=casey,
        service=service,
        decisions=[
            Decision(a2, "not_applicable", "Why."),
            Decision(c1, "adopted", " ", (team["evidence"],)),
        ],
    )
    assert [(w.measure.code, w.decided_by) for w in written] == [
        ("ICU A2", casey),
        ("ICU C1", casey),
    ]
    assert MeasureDecision.objects.get(measure=c1).detail == ADOPTED_AS_THE_CODE_DESCRIBES


def test_the_page_costs_the_same_queries_however_many_measures(client, team):
    """More measures (each recommended, each decided with evidence) cost no more queries."""
    client.force_login(team["casey"])
    version = CatalogueVersion.objects.order_by("-loaded_at").first()
    duty = Duty.objects.get(code="U2U-ILLEGAL-SAFETY")
    made: list[CodeMeasure] = []

    def grow(n: int) -> None:
        while len(made) < n:
            measure = CodeMeasure.objects.create(
                code=f"ICU Z{len(made) + 1}",
                source_url="https://example.test/code",
                catalogue_version=version,
                changed_in=version,
                code_family="ICU",
                area="Test area",
                summary="A measure made for counting queries",
                recommended_for={},
                status="in_force",
                issued_on=dt.date(2025, 2, 24),
                effective_from=dt.date(2025, 3, 17),
                basis="S",
            )
            measure.duties.add(duty)
            decide_measure(
                actor=team["casey"],
                service=team["service"],
                measure=measure,
                decision="adopted",
                detail="Counted.",
                evidence=[team["evidence"]],
            )
            made.append(measure)

    def measure() -> None:
        response = client.get(team["url"])
        assert response.status_code == 200
        assert f"ICU Z{len(made)}" in response.content.decode()

    assert_constant_queries(grow, measure, sizes=(2, 12))
    assert {r.code for r in recommended_measures(team["service"], TODAY)} >= {"ICU Z12"}


@pytest.mark.parametrize("sent", ["99999999999999999999999", "9" * 5000, "\u0661\u0662"])
def test_an_absurd_measure_id_is_refused_by_name_not_a_server_error(client, team, sent):
    client.force_login(team["casey"])
    data = page_form(client, team["url"])
    data.update(selected=[sent], decision="not_applicable", detail="Not for us.")
    before = everything()
    response = client.post(team["url"], data)
    assert response.status_code == 200
    assert changed(before, everything()) == {}
    assert (
        "No such measure: the boxes send a measure's id."
        in response.context["bulk"].errors["selected"]
    )
