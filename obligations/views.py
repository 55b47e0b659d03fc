"""Views outside the admin. Evidence is served only here, after the tenancy check."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from obligations import models as m
from obligations import selectors


@require_GET
@login_required
def download_evidence(request: HttpRequest, pk: int) -> HttpResponseBase:
    """Another organisation's evidence is a 404; a purged file is 410 with its tombstone."""
    evidence = get_object_or_404(selectors.scope(m.Evidence.objects.all(), request.user), pk=pk)
    if evidence.kind != m.EvidenceKind.FILE:
        raise Http404("This evidence is a link, not a file.")
    if evidence.purged_at is not None:
        return HttpResponse(
            f"This file was purged on {evidence.purged_at:%Y-%m-%d} "
            f"({evidence.purge_reason}); its SHA-256 was {evidence.sha256}.",
            status=410,
            content_type="text/plain; charset=utf-8",
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
