"""Views outside the admin. Evidence is served only here, after the tenancy check."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from obligations.access.models import AccessAction
from obligations.access.selectors import organisation_of, scope
from obligations.access.signin import record_access
from obligations.assessments.models import RiskAssessment
from obligations.assessments.selectors import (
    measures_register,
    private_channel_gaps,
    rating_progress,
    unrated_entries,
)
from obligations.catalogue.models import CatalogueVersion
from obligations.catalogue.selectors import catalogue_parameters
from obligations.dates import london_today
from obligations.exports.pdf import pdf_filename, pdf_response, render_pdf
from obligations.providers.models import Service
from obligations.register.models import Evidence, EvidenceKind


@require_GET
@login_required
def download_evidence(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Another organisation's evidence is a 404; a purged file is 410 with its tombstone."""
    evidence = get_object_or_404(
        scope(Evidence.objects.select_related("cycle__obligation__provider"), request.user),
        pk=pk,
    )
    return evidence_file_response(evidence, request)


def evidence_file_response(evidence: Evidence, request: HttpRequest) -> HttpResponseBase:
    """The file as an attachment that no browser will run; a link is 404, a purged file 410.
    Each file served is on the access log."""
    if evidence.kind != EvidenceKind.FILE:
        raise Http404("This evidence is a link, not a file.")
    if evidence.purged_at is not None:
        return HttpResponse(
            f"This file was purged on {evidence.purged_at:%Y-%m-%d} "
            f"({evidence.purge_reason}); its SHA-256 was {evidence.sha256}.",
            status=410,
            content_type="text/plain; charset=utf-8",
        )
    record_access(
        user=request.user,
        action=AccessAction.EVIDENCE_DOWNLOAD,
        request=request,
        organisation_ids=[organisation_of(evidence)],
        description=f"Evidence {evidence.pk}: {evidence.title} (SHA-256 {evidence.sha256})",
    )
    response = FileResponse(
        evidence.file.open("rb"),
        as_attachment=True,
        filename=evidence.original_name or evidence.sha256,
        content_type=evidence.content_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Evidence-SHA256"] = evidence.sha256
    return response


@require_GET
@login_required
def assessment_record(request: HttpRequest, pk: int) -> HttpResponse:
    """A risk assessment as a record to print or file: every row, who, when, and the sources."""
    return render(request, ASSESSMENT, _assessment_context(request, pk))


@require_GET
@login_required
def assessment_record_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The same record as a PDF, on the access log like every file that leaves the tracker."""
    context = _assessment_context(request, pk)
    assessment = context["assessment"]
    name = pdf_filename("risk-assessment", assessment.service.name, assessment.pk)
    return _record_pdf(request, ASSESSMENT, context, name, assessment.service, str(assessment))


@require_GET
@login_required
def measures_record(request: HttpRequest, pk: int) -> HttpResponse:
    """A service's measures register as a record: each measure, why, and the decision."""
    return render(request, MEASURES, _measures_context(request, pk))


@require_GET
@login_required
def measures_record_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    context = _measures_context(request, pk)
    service = context["service"]
    name = pdf_filename("measures-register", service.name, service.pk, context["today"])
    title = f"Measures register: {service.name}"
    return _record_pdf(request, MEASURES, context, name, service, title)


ASSESSMENT = "obligations/records/assessment.html"
MEASURES = "obligations/records/measures.html"


def _assessment_context(request: HttpRequest, pk: int) -> dict[str, Any]:
    assessment = get_object_or_404(
        scope(RiskAssessment.objects.all(), request.user).select_related(
            "service__provider__organisation", "cycle__obligation__duty", "assessor", "approver"
        ),
        pk=pk,
    )
    entries = assessment.entries.select_related("harm_kind", "updated_by").prefetch_related(
        "risk_factors", "evidence"
    )
    params = catalogue_parameters()["assessment"]
    return {
        "assessment": assessment,
        "entries": entries,
        "progress": rating_progress(entries),
        "unrated": unrated_entries(assessment),
        "channel_gaps": private_channel_gaps(assessment),
        "steps": params["steps"],
        "method_note": params.get("unverified_note", ""),
        "generated": timezone.localtime(),
        "version": CatalogueVersion.objects.order_by("-loaded_at").first(),
    }


def _measures_context(request: HttpRequest, pk: int) -> dict[str, Any]:
    service = get_object_or_404(
        scope(Service.objects.all(), request.user).select_related("provider__organisation"),
        pk=pk,
    )
    today = london_today()
    return {
        "service": service,
        "rows": measures_register(service, today),
        "today": today,
        "generated": timezone.localtime(),
        "version": CatalogueVersion.objects.order_by("-loaded_at").first(),
    }


def _record_pdf(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    name: str,
    service: Service,
    title: str,
) -> HttpResponse:
    pdf = render_pdf(template, {**context, "pdf_title": title}, request)
    record_access(
        user=request.user,
        action=AccessAction.EXPORT,
        request=request,
        organisation_ids=[service.provider.organisation_id],
        description=f"{name} (service: {service.name})",
    )
    return pdf_response(pdf, name)
