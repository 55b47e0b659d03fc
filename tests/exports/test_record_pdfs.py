"""The printable records as PDFs: the risk assessment and the measures register, each with
its service, its ratings or decisions, A4 pages numbered, linked from where the printable
records are, on the access log, and another organisation's a 404."""

import pytest
from django.core.management import call_command
from django.test import Client

from obligations.access.models import AccessAction, AccessLog
from obligations.assessments.models import RiskAssessment
from tests.pdfs import page_size_mm, pdf_texts


def signed_in(django_user_model, username):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(django_user_model.objects.get(username=username))
    return client


@pytest.fixture
def assessment(catalogue):  # type: ignore[no-untyped-def]
    call_command("load_demo", verbosity=0)
    # A rated assessment of the demo's: its rows have levels and rationales.
    return RiskAssessment.objects.filter(entries__level="high").distinct().order_by("pk")[0]


def test_the_risk_assessment_as_a_pdf(assessment, django_user_model):
    client = signed_in(django_user_model, "manager")
    response = client.get(f"/records/assessments/{assessment.pk}/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    service = assessment.service.name
    assert response["Content-Disposition"] == (
        f'attachment; filename="risk-assessment-{service.lower().replace(" ", "-")}'
        f'-{assessment.pk}.pdf"'
    )
    pages = pdf_texts(response.content)
    assert len(pages) >= 1
    assert page_size_mm(response.content) == (210.0, 297.0)
    assert service in pages[0]
    assert f"Page 1 of {len(pages)}" in pages[0]
    assert "Generated 24 Nov 2026 10:00 (Europe/London) by manager" in pages[0]
    text = " ".join(pages)
    entry = assessment.entries.exclude(level="").select_related("harm_kind").first()
    assert entry.harm_kind.label in text
    assert entry.rationale in text
    assert "High" in text
    row = AccessLog.objects.get(action=AccessAction.EXPORT)
    assert row.organisation_id == assessment.service.provider.organisation_id
    assert row.description.startswith("risk-assessment-")


def test_the_measures_register_as_a_pdf(assessment, django_user_model):
    client = signed_in(django_user_model, "compliance")
    service = assessment.service
    response = client.get(f"/records/services/{service.pk}/measures/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    pages = pdf_texts(response.content)
    assert len(pages) >= 1
    text = " ".join(pages)
    assert f"Measures register: {service.name}" in text
    assert "Adopted" in text  # the demo's decisions
    assert "Not decided" in text
    assert "Generated 24 Nov 2026 10:00 (Europe/London) by compliance" in text


def test_another_organisations_records_are_a_404(assessment, django_user_model):
    elsewhere = signed_in(django_user_model, "elsewhere")
    assert elsewhere.get(f"/records/assessments/{assessment.pk}/pdf/").status_code == 404
    service = assessment.service_id
    assert elsewhere.get(f"/records/services/{service}/measures/pdf/").status_code == 404
    assert not AccessLog.objects.filter(action=AccessAction.EXPORT).exists()


def test_the_pdfs_are_linked_where_the_printable_records_are(assessment, django_user_model):
    client = signed_in(django_user_model, "compliance")
    pdf = f'href="/records/assessments/{assessment.pk}/pdf/"'
    obligation = assessment.cycle.obligation_id
    assert pdf in client.get(f"/admin/obligations/obligation/{obligation}/change/").content.decode()
    change = f"/admin/obligations/riskassessment/{assessment.pk}/change/"
    assert pdf in client.get(change).content.decode()
    assert pdf in client.get(f"/records/assessments/{assessment.pk}/").content.decode()
    measures = f'href="/records/services/{assessment.service_id}/measures/pdf/"'
    page = f"/admin/obligations/service/{assessment.service_id}/measures/"
    assert measures in client.get(page).content.decode()
    assert (
        measures
        in client.get(f"/records/services/{assessment.service_id}/measures/").content.decode()
    )
