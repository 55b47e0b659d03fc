"""Views outside the admin. Evidence is served only here, after the tenancy check."""

from __future__ import annotations

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
    context = {
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
    return render(request, "obligations/records/assessment.html", context)


@require_GET
@login_required
def measures_record(request: HttpRequest, pk: int) -> HttpResponse:
    """A service's measures register as a record: each measure, why, and the decision."""
    service = get_object_or_404(
        scope(Service.objects.all(), request.user).select_related("provider__organisation"),
        pk=pk,
    )
    rows = measures_register(service, london_today())
    context = {
        "service": service,
        "rows": rows,
        "generated": timezone.localtime(),
        "version": CatalogueVersion.objects.order_by("-loaded_at").first(),
    }
    return render(request, "obligations/records/measures.html", context)
