"""The risk assessment editor: Ofcom's four steps in order, the rows by harm kind with their
progress, risk factors as labelled checkboxes, and a refused save that keeps what was typed."""

import re

import pytest
from django.urls import reverse

from obligations.access.models import Role
from obligations.assessments.actions import rate_entry, start_assessment
from obligations.assessments.models import AssessmentEntry
from obligations.catalogue.models import HarmKind, RiskFactor
from obligations.register.evidence import purge_evidence
from obligations.register.states import EventSource
from tests.factories import (
    OrganisationFactory,
    ProviderFactory,
    applied_service,
    member,
    moderation_log,
)
from tests.helpers import admin_form_data, assert_constant_queries, signed_in_client

ADMIN = EventSource.ADMIN


@pytest.fixture
def chat(catalogue):  # type: ignore[no-untyped-def]
    """An end-to-end encrypted chat service's illegal content assessment, just started."""
    org = OrganisationFactory(name="Acme Group")
    assessor = member(org, username="casey")
    service = applied_service(
        provider=ProviderFactory(organisation=org, name="Acme"),
        name="Chat",
        features=["e2ee_messaging"],
    )
    obligation = service.obligations.get(duty__code="U2U-ILLEGAL-RA")
    assessment = start_assessment(actor=assessor, cycle=obligation.current_cycle, source=ADMIN)
    url = reverse("admin:obligations_riskassessment_change", args=[assessment.pk])
    return {"assessor": assessor, "assessment": assessment, "url": url, "org": org}


def prefix_of(data, entry):  # type: ignore[no-untyped-def]
    return next(k for k, v in data.items() if k.endswith("-id") and str(v) == str(entry.pk))[:-3]


def test_the_four_steps_come_in_order_with_the_rows_grouped_and_counted(chat):
    page = signed_in_client(chat["assessor"]).get(chat["url"]).content.decode()
    steps = [
        "1. Understand the kinds of harm",
        "2. Assess the risk of harm",
        "3. Decide measures, implement and record",
        "4. Report, review and update",
    ]
    at = [page.index(step) for step in steps]
    assert at == sorted(at)
    rows = chat["assessment"].entries.count()
    assert f'<strong id="rating-progress">0 of {rows} rated</strong>' in page
    assert page.count('<details class="harm"') == rows  # one harm kind per row here
    # The first group to rate is open; the others wait, folded.
    assert page.count('<details class="harm" id="harm-') - page.count(" open>") <= rows - 1
    # Risk factors are labelled checkboxes, never a multi-select or a code.
    assert "<select multiple" not in page and 'name="entries-0-risk_factors"' in page
    assert re.search(r'type="checkbox" name="entries-\d+-risk_factors"[^>]*>\s*Encrypted', page)
    assert ">encrypted_messaging<" not in page


def test_a_refused_save_keeps_everything_typed_and_names_the_field(chat):
    client = signed_in_client(chat["assessor"])
    data = admin_form_data(client.get(chat["url"]))
    entries = list(chat["assessment"].entries.select_related("harm_kind"))
    plain = [e for e in entries if e.harm_kind.group not in ("csea", "hate")]
    groups = RiskFactor.objects.get(code="user_groups")
    typed = {"understand_notes": "User reports and Ofcom's Register of Risks."}
    for n, entry in enumerate(plain[:4]):
        p = prefix_of(data, entry)
        typed |= {
            f"{p}-likelihood": "medium",
            f"{p}-impact": "low",
            f"{p}-rationale": f"Row {n}: seen in reports.",
            f"{p}-evidence_notes": f"Moderation log {n}",
        }
    hate = next(e for e in entries if e.harm_kind.code == "hate")
    p = prefix_of(data, hate)
    typed |= {
        f"{p}-likelihood": "high",
        f"{p}-impact": "",
        f"{p}-rationale": "Hate reports are a fifth of all reports.",
        f"{p}-risk_factors": str(groups.pk),
    }
    data |= typed
    refused = client.post(chat["url"], data)
    assert refused.status_code == 200
    page = refused.content.decode()
    # Everything typed comes back, in every row, as the form would send it again.
    assert {k: v for k, v in admin_form_data(refused).items() if k in typed} == typed
    # The error is next to the field it names, and listed with a link to it.
    impact = f"id_{p}-impact"
    assert re.search(
        r'<label class="name" for="' + impact + r'">Impact</label><ul class="errorlist[^>]*>'
        r"<li>Rate both the likelihood and the impact: choose the impact.</li>",
        page,
    )
    assert f'<a href="#{impact}">Hate, impact</a>' in page
    assert '<details class="harm" id="harm-hate" open>' in page
    assert not AssessmentEntry.objects.exclude(level="").exists()

    data[f"{p}-impact"] = "medium"
    assert client.post(chat["url"], data).status_code == 302
    hate.refresh_from_db()
    assert (hate.level, hate.updated_by) == ("high", chat["assessor"])
    assert list(hate.risk_factors.values_list("code", flat=True)) == ["user_groups"]
    page = client.get(chat["url"]).content.decode()
    assert f'<strong id="rating-progress">5 of {len(entries)} rated</strong>' in page


def test_a_factor_rule_is_shown_on_the_field_it_concerns(chat):
    client = signed_in_client(chat["assessor"])
    data = admin_form_data(client.get(chat["url"]))
    entry = chat["assessment"].entries.get(harm_kind__code="csea_image")
    p = prefix_of(data, entry)
    data |= {f"{p}-likelihood": "low", f"{p}-impact": "high", f"{p}-rationale": "Rare."}
    data.pop(f"{p}-risk_factors")  # the assessor unticks the factor the features bring
    page = client.post(chat["url"], data).content.decode()
    assert re.search(
        r'<details class="choose" open>\s*<summary>Risk factors: 0 chosen</summary>\s*'
        r'<ul class="errorlist[^>]*><li>Keep the risk factor “Encrypted messaging” selected',
        page,
    )
    assert f'<a href="#id_{p}-risk_factors">CSEA: image-based child sexual abuse material, ' in page


def test_the_editor_costs_the_same_queries_for_20_rows_or_60(chat):
    assessment, assessor = chat["assessment"], chat["assessor"]
    link = moderation_log(assessment.cycle, assessor)
    factor = RiskFactor.objects.get(code="livestreaming")
    model = HarmKind.objects.get(code="hate")

    def grow(n: int) -> None:
        while assessment.entries.count() < n:
            harm = HarmKind.objects.get(pk=model.pk)
            harm.pk, harm.code = None, f"extra_{assessment.entries.count()}"
            harm.save()
            entry = AssessmentEntry.objects.create(assessment=assessment, harm_kind=harm)
            rate_entry(
                actor=assessor,
                entry=entry,
                likelihood="low",
                impact="low",
                rationale="Rare.",
                risk_factors=[factor],
                evidence=[link],
            )

    client = signed_in_client(assessor)

    def page_and_unchanged_save() -> None:
        page = client.get(chat["url"])
        assert page.status_code == 200
        assert client.post(chat["url"], admin_form_data(page)).status_code == 302

    assert_constant_queries(grow, page_and_unchanged_save, sizes=(25, 60))


def test_a_closed_record_is_shown_not_edited(chat, client):
    other = member(OrganisationFactory(name="Elsewhere"), username="eve")
    assert signed_in_client(other).get(chat["url"]).status_code == 404
    viewer = member(chat["org"], role="auditor", username="vic")
    page = signed_in_client(viewer).get(chat["url"]).content.decode()
    assert "Risk level" in page and 'name="entries-0-likelihood"' not in page


def test_a_row_citing_purged_evidence_saves_unchanged_and_keeps_the_citation(chat):
    """Purging a file leaves its tombstone on the record: the page offers it, marked, so that
    sending it back unchanged neither drops the citation nor writes a history row."""
    assessment, assessor = chat["assessment"], chat["assessor"]
    link = moderation_log(assessment.cycle, assessor)
    entry = assessment.entries.exclude(harm_kind__group__in=("csea", "hate")).first()
    rate_entry(
        actor=assessor, entry=entry, likelihood="low", impact="low", rationale="Rare.",
        evidence=[link],
    )  # fmt: skip
    admin = member(chat["org"], role=Role.ADMIN, username="ada")
    purge_evidence(actor=admin, evidence=link, reason="Retention period ended.", source=ADMIN)
    before = entry.history.count()
    client = signed_in_client(assessor)
    page = client.get(chat["url"])
    assert "Moderation log (purged)" in page.content.decode()
    assert client.post(chat["url"], admin_form_data(page)).status_code == 302
    entry.refresh_from_db()
    assert list(entry.evidence.all()) == [link]
    assert entry.history.count() == before
