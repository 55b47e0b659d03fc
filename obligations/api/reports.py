"""API views that compute rather than list: what would apply to a profile, the signed audit pack
and its public key, the dashboard's figures."""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.http import FileResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from obligations.access.models import AccessAction
from obligations.access.selectors import organisation_of, scope
from obligations.access.signin import record_access
from obligations.api.filters import refuse_unknown, register_day
from obligations.api.pagination import is_digits
from obligations.api.serializers import PublicKeySerializer
from obligations.api.views import AS_OF
from obligations.catalogue.applicability import report
from obligations.catalogue.profiles import ProfileError, parse_profile
from obligations.catalogue.selectors import loaded_catalogue
from obligations.dashboard.queries import FilterError, Filters, summary
from obligations.dates import london_today
from obligations.exports.auditpack import write_pack
from obligations.exports.signing import public_key_pem
from obligations.providers.models import Provider, Service
from obligations.register.models import Obligation


class ApplicabilityView(APIView):
    """What applies to a service profile, saving nothing (like `manage.py applicable_duties`)."""

    permission_classes = [IsAuthenticated]  # a question, not a change: read-only tokens too

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "The applicable duties, each why")},
    )
    def post(self, request: Request) -> Response:
        catalogue = loaded_catalogue()
        try:
            profile = parse_profile(request.data, catalogue)
        except ProfileError as exc:
            if exc.field:
                raise ValidationError({exc.field: [exc.reason]}) from None
            raise ValidationError(f"profile: {exc}") from None
        return Response(report(catalogue, profile, day=london_today()))


class AuditPackView(APIView):
    """One signed ZIP for a service or a provider: the register (CSV and JSON), every evidence
    file, each obligation's events and field history, and a manifest of SHA-256 hashes signed
    with the installation's Ed25519 key (`manage.py verify_audit_pack` checks it)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("service", int, description="A service's ID (or give provider)."),
            OpenApiParameter("provider", int, description="A provider's ID (or give service)."),
            AS_OF,
        ],
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request) -> HttpResponseBase:
        refuse_unknown(request, {"service", "provider", "as_of"})
        day, as_of = register_day(request)
        chosen = {
            k: request.query_params[k] for k in ("service", "provider") if k in request.query_params
        }
        if len(chosen) != 1 or not is_digits(next(iter(chosen.values()))):
            raise ValidationError("Give one of service=<id> or provider=<id>.")
        ((kind, raw_id),) = chosen.items()
        model = Service if kind == "service" else Provider
        subject = get_object_or_404(scope(model.objects.all(), request.user), pk=raw_id)
        obligations = scope(Obligation.objects.all(), request.user).filter(**{kind: subject})
        out = tempfile.SpooledTemporaryFile(max_size=20 * 1024 * 1024)  # noqa: SIM115
        try:
            summary = write_pack(
                obligations=obligations,
                title=f"{kind.capitalize()}: {subject} (built by {request.user.get_username()})",
                today=london_today(),
                out=out,
                as_of=as_of,
            )
        except ImproperlyConfigured as exc:
            out.close()
            raise ServiceUnavailable(str(exc)) from None
        out.seek(0)
        name = f"audit-pack-{kind}-{subject.pk}-{(as_of or day).isoformat()}.zip"
        record_access(
            user=request.user,
            action=AccessAction.AUDIT_PACK,
            request=request,
            organisation_ids=[organisation_of(subject)],
            description=f"{name} ({kind}: {subject}); manifest SHA-256 {summary.manifest_sha256}",
        )
        response = FileResponse(
            out, as_attachment=True, filename=name, content_type="application/zip"
        )
        # A pack runs to megabytes of evidence: served in Django's default 4 KB blocks, that
        # is thousands of round trips through the handler.
        response.block_size = 64 * 1024
        response["X-Manifest-SHA256"] = summary.manifest_sha256
        return response


class ServiceUnavailable(APIException):
    status_code = 503
    default_detail = "Audit packs cannot be signed: no signing key is configured."


class PublicKeyView(APIView):
    """The Ed25519 public key that audit pack manifests are signed with (public: anyone
    holding a pack may check it)."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: PublicKeySerializer})
    def get(self, request: Request) -> Response:
        try:
            pem = public_key_pem()
        except ImproperlyConfigured as exc:
            raise ServiceUnavailable(str(exc)) from None
        return Response({"algorithm": "Ed25519", "public_key_pem": pem})


def _plain(value: Any) -> Any:
    """Figures as JSON: money and percentages as exact strings, dates as ISO dates."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class DashboardView(APIView):
    """The managers' dashboard as data: the same figures, from the same queries, as
    `/dashboard/` (`obligations.dashboard.queries.summary`)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("organisation", int),
            OpenApiParameter("provider", int),
            OpenApiParameter("service", int),
            OpenApiParameter("owner", int, description="Only obligations this user owns."),
            AS_OF,
        ],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "Every figure of the dashboard")},
    )
    def get(self, request: Request) -> Response:
        try:
            chosen = Filters.from_query(request.query_params.dict(), today=london_today(), uk=False)
        except FilterError as exc:
            raise ValidationError({k: [v] for k, v in exc.errors.items()}) from None
        figures = summary(request.user, chosen, today=london_today())
        return Response(_plain(figures))
