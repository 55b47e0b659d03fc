"""The API's endpoints: thin views over `selectors` (reads) and `services` (writes).

Every queryset starts from `selectors.scope`, so another organisation's record is a 404;
every write checks the caller's role in the record's organisation and then calls the same
service function the admin calls, so the workflow's rules and four-eyes check hold here too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse, HttpResponseBase, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from obligations.access.models import AccessAction, Organisation
from obligations.access.selectors import (
    can_edit,
    can_review,
    may_transition,
    organisation_of,
    scope,
    visible_organisations,
)
from obligations.access.signin import record_access
from obligations.api.filters import (
    AssessmentFilter,
    DutyFilter,
    EventFilter,
    EvidenceFilter,
    MeasureDecisionFilter,
    ObligationFilter,
    OfcomNoticeFilter,
    ProviderFilter,
    ReminderFilter,
    ServiceFilter,
    TechnologyNoticeFilter,
    register_day,
)
from obligations.api.parsers import JSONParser
from obligations.api.serializers import (
    API_REGISTER_VALUES,
    CycleSerializer,
    DueDateSerializer,
    DutySerializer,
    EventSerializer,
    EvidenceSerializer,
    EvidenceUploadSerializer,
    HistorySerializer,
    MeasureDecisionSerializer,
    OfcomNoticeSerializer,
    OrganisationSerializer,
    OwnerSerializer,
    ProviderSerializer,
    RegisterSerializer,
    ReminderSerializer,
    RiskAssessmentSerializer,
    ServiceSerializer,
    TechnologyNoticeSerializer,
    TransitionSerializer,
)
from obligations.assessments.models import AssessmentEntry, MeasureDecision, RiskAssessment
from obligations.catalogue.models import Duty
from obligations.catalogue.selectors import catalogue_parameters
from obligations.dates import london_today
from obligations.exports.tables import register_rows, stream_csv, stream_json, xlsx_file
from obligations.notices.models import OfcomNotice, TechnologyNotice
from obligations.providers.actions import save_service
from obligations.providers.models import Provider, Service
from obligations.providers.selectors import providers_with_exposure
from obligations.register.actions import assign_owner, set_due_date
from obligations.register.evidence import add_evidence_file, add_evidence_link
from obligations.register.models import Event, Evidence, Obligation, ObligationCycle
from obligations.register.selectors import register
from obligations.register.states import EventSource
from obligations.register.uploads import EvidenceRefused
from obligations.register.workflow import transition_to
from obligations.reminders.models import Reminder
from obligations.views import evidence_file_response

API = EventSource.API
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
AS_OF = OpenApiParameter(
    "as_of",
    OpenApiTypes.DATE,
    description="The register as it stood at the end of this date (Europe/London), "
    "rebuilt from events and history.",
)


READ_ONLY_ROLE = "Your role in this organisation can read the register but not change it."
REVIEW_ONLY = "Your role in this organisation reviews: approve (met) or send back, nothing else."


def require_edit(request: Request, obj: Any) -> None:
    """Reading is not changing: auditors and managers may look, not touch."""
    if not can_edit(request.user, organisation_of(obj)):
        raise PermissionDenied(READ_ONLY_ROLE)


class Scoped:
    """A list of one tenant-owned model, scoped to the caller's organisations."""

    model: type[Any]
    request: Request

    def base_queryset(self) -> QuerySet[Any]:
        return self.model.objects.all()

    def get_queryset(self) -> QuerySet[Any]:
        return scope(self.base_queryset(), self.request.user)


class ReadOnly(Scoped, viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    pass


class OrganisationViewSet(ReadOnly):
    model = Organisation
    serializer_class = OrganisationSerializer


class ProviderViewSet(ReadOnly):
    """Providers with their revenue periods, penalty cap (Sch.13 para 4) and exposure."""

    model = Provider
    serializer_class = ProviderSerializer
    filterset_class = ProviderFilter

    def base_queryset(self) -> QuerySet[Provider]:
        return providers_with_exposure(Provider.objects.all(), london_today())

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "parameters": catalogue_parameters()}


class ServiceViewSet(
    Scoped,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.ReadOnlyModelViewSet,  # type: ignore[type-arg]
):
    """Services and their profiles. Creating or changing one applies the catalogue: the
    response's `register` says which obligations were created or changed."""

    model = Service
    serializer_class = ServiceSerializer
    filterset_class = ServiceFilter

    def base_queryset(self) -> QuerySet[Service]:
        return Service.objects.select_related("exemption").prefetch_related(
            "categories", "features"
        )

    def _save(self, serializer: ServiceSerializer, status_code: int) -> Response:
        data = dict(serializer.validated_data)
        categories, features = data.pop("categories", None), data.pop("features", None)
        service = serializer.instance or Service()
        for name, value in data.items():
            setattr(service, name, value)
        require_edit(self.request, service.provider)
        result = save_service(
            actor=self.request.user,
            service=service,
            categories=categories,
            features=features,
            source=API,
        )
        body = dict(ServiceSerializer(service, context=self.get_serializer_context()).data)
        body["register"] = {
            "created": result.created,
            "applies_again": result.reapplied,
            "no_longer_applies": result.not_applicable,
        }
        return Response(body, status=status_code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not can_edit(request.user):
            # Refused before the body is read: a reader learns nothing from validation.
            raise PermissionDenied(READ_ONLY_ROLE)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._save(serializer, status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        require_edit(request, instance.provider)
        serializer = self.get_serializer(
            instance, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        return self._save(serializer, status.HTTP_200_OK)


class DutyViewSet(viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    """The catalogue of the Act's duties (read-only: it changes by loading a new version)."""

    queryset = Duty.objects.all()
    serializer_class = DutySerializer
    filterset_class = DutyFilter


@extend_schema(parameters=[AS_OF])
class ObligationViewSet(Scoped, viewsets.ReadOnlyModelViewSet):  # type: ignore[type-arg]
    """The register: one row per obligation, the same columns as the exports. With `as_of`,
    the register as it stood on that date."""

    model = Obligation
    serializer_class = RegisterSerializer
    filterset_class = ObligationFilter
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self) -> QuerySet[Obligation]:
        day, as_of = register_day(self.request)
        return register(super().get_queryset(), today=day, as_of=as_of)

    def get_serializer_context(self) -> dict[str, Any]:
        day, _ = register_day(self.request)
        return {**super().get_serializer_context(), "today": day}

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rows = self.filter_queryset(self.get_queryset()).values(*API_REGISTER_VALUES)
        page = self.paginate_queryset(rows)
        assert page is not None  # always paginated
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        obligation = self.get_object()
        row = self.get_queryset().filter(pk=obligation.pk).values(*API_REGISTER_VALUES).get()
        body = dict(self.get_serializer(row).data)
        body.update(
            why=obligation.why,
            notes=obligation.notes,
            not_applicable_reason=obligation.not_applicable_reason,
            external_ref=obligation.external_ref,
            technology_notice=obligation.technology_notice_id,
            ofcom_notice=obligation.ofcom_notice_id,
            cycles=CycleSerializer(obligation.cycles.all(), many=True).data,
        )
        return Response(body)

    def _open_cycle(self) -> tuple[Obligation, ObligationCycle]:
        obligation = self.get_object()
        require_edit(self.request, obligation)
        cycle = obligation.current_cycle
        if cycle is None:
            raise ValidationError("This obligation has no cycle to work on.")
        return obligation, cycle

    def _row(self, obligation: Obligation, status_code: int = 200) -> Response:
        fresh = register(Obligation.objects.filter(pk=obligation.pk), today=london_today())
        row = fresh.values(*API_REGISTER_VALUES).get()
        return Response(self.get_serializer(row).data, status=status_code)

    @extend_schema(request=TransitionSerializer, responses=RegisterSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None) -> Response:
        """Move the current cycle to `to`, by the workflow's one table of transitions.
        Managers review: they may approve or send back, and make no other move."""
        obligation = self.get_object()
        organisation = organisation_of(obligation)
        if not can_review(request.user, organisation):
            raise PermissionDenied(READ_ONLY_ROLE)
        data = self._valid(TransitionSerializer)
        if not may_transition(request.user, organisation, data["to"]):
            raise PermissionDenied(REVIEW_ONLY)
        cycle = obligation.current_cycle
        if cycle is None:
            raise ValidationError("This obligation has no cycle to work on.")
        transition_to(
            actor=request.user, cycle=cycle, to=data["to"], reason=data["reason"], source=API
        )
        return self._row(obligation)

    @extend_schema(request=OwnerSerializer, responses=RegisterSerializer)
    @action(detail=True, methods=["post"])
    def owner(self, request: Request, pk: str | None = None) -> Response:
        """Give the obligation to a member of its organisation (or to nobody: null)."""
        obligation = self.get_object()
        require_edit(request, obligation)
        organisation = organisation_of(obligation)
        owner = self._valid(OwnerSerializer, organisation=organisation)["owner"]
        assign_owner(actor=request.user, obligation=obligation, owner=owner, source=API)
        return self._row(obligation)

    @extend_schema(request=DueDateSerializer, responses=RegisterSerializer)
    @action(detail=True, methods=["post"], url_path="due-date")
    def due_date(self, request: Request, pk: str | None = None) -> Response:
        """Move the open cycle's due date, saying why."""
        obligation, cycle = self._open_cycle()
        data = self._valid(DueDateSerializer)
        try:
            set_due_date(
                actor=request.user,
                cycle=cycle,
                due=data["due_date"],
                reason=data["reason"],
                source=API,
            )
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return self._row(obligation)

    @extend_schema(
        request={"multipart/form-data": EvidenceUploadSerializer},
        responses={201: EvidenceSerializer},
    )
    @action(detail=True, methods=["post"])
    def evidence(self, request: Request, pk: str | None = None) -> Response:
        """Attach a file (multipart, hashed as it streams in) or a link to the open cycle."""
        _, cycle = self._open_cycle()
        request.data  # noqa: B018 (parsing the upload is what sets evidence_too_large)
        if getattr(request._request, "evidence_too_large", False):
            raise EvidenceRefused(
                f"The file is larger than the {settings.EVIDENCE_MAX_BYTES:,}-byte limit; "
                "nothing was stored.",
                status=413,
            )
        data = self._valid(EvidenceUploadSerializer)
        if cycle.is_closed:
            raise ValidationError("This cycle is closed; evidence goes on an open cycle.")
        common = {
            "actor": request.user,
            "cycle": cycle,
            "title": data["title"],
            "expires_on": data["expires_on"],
            "source": API,
        }
        if data.get("file"):
            evidence = add_evidence_file(uploaded=data["file"], **common)
        else:
            evidence = add_evidence_link(url=data["url"], **common)
        body = EvidenceSerializer(evidence, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses=HistorySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)  # one list, not pages
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Every saved version of the obligation's own fields: who, when, why, what changed."""
        obligation = self.get_object()
        records = list(
            obligation.history.select_related("history_user").order_by("history_date", "pk")
        )
        rows = []
        previous = None
        for record in records:
            changes: list[dict[str, Any]] = (
                [
                    {"field": c.field, "old": c.old, "new": c.new}
                    for c in record.diff_against(previous).changes
                ]
                if previous is not None
                else []
            )
            rows.append(
                {
                    "at": record.history_date,
                    "by": record.history_user.get_username() if record.history_user else None,
                    "type": record.get_history_type_display(),
                    "reason": record.history_change_reason or "",
                    "changes": changes,
                }
            )
            previous = record
        return Response(HistorySerializer(rows, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=["csv", "json", "xlsx"])
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, XLSX): OpenApiTypes.BINARY,
        },
    )
    @action(detail=False, methods=["get"], url_path=r"export/(?P<kind>csv|json|xlsx)")
    def export(self, request: Request, kind: str) -> HttpResponseBase:
        """The filtered register as a file; CSV and JSON stream as they are read."""
        day, as_of = register_day(request)
        rows = register_rows(self.filter_queryset(self.get_queryset()), day)
        name = f"obligations-{(as_of or day).isoformat()}.{kind}"
        response: HttpResponseBase
        if kind == "csv":
            response = StreamingHttpResponse(
                stream_csv(rows), content_type="text/csv; charset=utf-8"
            )
        elif kind == "json":
            meta = {
                "generated_at": dt.datetime.now(dt.UTC).isoformat(),
                "as_of": as_of.isoformat() if as_of else None,
                "filters": {k: v for k, v in request.query_params.items()},
            }
            response = StreamingHttpResponse(
                stream_json(rows, meta), content_type="application/json"
            )
        else:
            response = FileResponse(
                xlsx_file(rows),
                content_type=XLSX,
            )
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        record_access(
            user=request.user,
            action=AccessAction.EXPORT,
            request=request,
            # On the log of each organisation whose rows the export could hold.
            organisation_ids=visible_organisations(request.user).values_list("pk", flat=True),
            description=f"{name}; filters: {request.query_params.urlencode() or 'none'}",
        )
        return response

    def _valid(self, serializer_class: type[Any], **context: Any) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, context=context)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class EventViewSet(ReadOnly):
    """The append-only record of every change to every obligation: who, when, why, from where."""

    model = Event
    serializer_class = EventSerializer
    filterset_class = EventFilter

    def base_queryset(self) -> QuerySet[Event]:
        return Event.objects.select_related("actor")


class EvidenceViewSet(ReadOnly):
    model = Evidence
    serializer_class = EvidenceSerializer
    filterset_class = EvidenceFilter

    def base_queryset(self) -> QuerySet[Evidence]:
        return Evidence.objects.select_related("uploaded_by", "cycle")

    @extend_schema(responses={(200, "*/*"): OpenApiTypes.BINARY})  # the type it was stored as
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """The file, as stored; `X-Evidence-SHA256` carries the hash recorded at upload."""
        return evidence_file_response(self.get_object(), request)


class TechnologyNoticeViewSet(ReadOnly):
    model = TechnologyNotice
    serializer_class = TechnologyNoticeSerializer
    filterset_class = TechnologyNoticeFilter


class OfcomNoticeViewSet(ReadOnly):
    model = OfcomNotice
    serializer_class = OfcomNoticeSerializer
    filterset_class = OfcomNoticeFilter


class ReminderViewSet(ReadOnly):
    """Every reminder the tracker decided to send: to whom, about what, why, and whether sent."""

    model = Reminder
    serializer_class = ReminderSerializer
    filterset_class = ReminderFilter

    def base_queryset(self) -> QuerySet[Reminder]:
        return Reminder.objects.select_related("recipient", "cycle")


class RiskAssessmentViewSet(ReadOnly):
    model = RiskAssessment
    serializer_class = RiskAssessmentSerializer
    filterset_class = AssessmentFilter

    def base_queryset(self) -> QuerySet[RiskAssessment]:
        entries = AssessmentEntry.objects.select_related("harm_kind").prefetch_related(
            "risk_factors", "evidence"
        )
        return RiskAssessment.objects.select_related("assessor", "approver").prefetch_related(
            Prefetch("entries", queryset=entries)
        )


class MeasureDecisionViewSet(ReadOnly):
    model = MeasureDecision
    serializer_class = MeasureDecisionSerializer
    filterset_class = MeasureDecisionFilter

    def base_queryset(self) -> QuerySet[MeasureDecision]:
        return MeasureDecision.objects.select_related("measure", "decided_by").prefetch_related(
            "evidence"
        )
