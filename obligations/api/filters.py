"""Filters for every list. A parameter the list does not know, or a value it cannot read,
is a 400 that says which: never silently ignored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Set as AbstractSet
from typing import Any

import django_filters as df
from django import forms
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions

from obligations.assessments.models import (
    AssessmentKind,
    MeasureDecision,
    MeasureDecisionKind,
    RiskAssessment,
)
from obligations.catalogue.commencement import in_force_q
from obligations.catalogue.models import Duty
from obligations.dates import london_today
from obligations.notices.models import NoticeKind, NoticeStage, OfcomNotice, TechnologyNotice
from obligations.providers.models import Provider, Service
from obligations.register.models import Event, Evidence, EvidenceKind, Obligation
from obligations.register.selectors import register_overdue
from obligations.register.states import CycleStatus, EventKind
from obligations.reminders.models import Reminder, ReminderKind, ReminderStatus

# Parameters every list understands besides its filters.
COMMON_PARAMS = frozenset({"ordering", "cursor", "page_size", "as_of", "format"})
YES_NO = (("true", "true"), ("false", "false"))


def refuse_unknown(request: Any, known: AbstractSet[str]) -> None:
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise exceptions.ValidationError(
            {
                name: [f"Unknown query parameter. Known: {', '.join(sorted(known))}."]
                for name in unknown
            }
        )


class StrictFilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request: Any, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        filterset_class = self.get_filterset_class(view, queryset)
        filters = set(filterset_class.base_filters) if filterset_class is not None else set()
        refuse_unknown(request, COMMON_PARAMS | filters)
        if filters.isdisjoint(request.query_params):
            # No filter asked for: building the FilterSet and its form (deep copies of every
            # filter and field) would only hand back the same queryset.
            return queryset
        return super().filter_queryset(request, queryset, view)


class IsoDateFilter(df.DateFilter):
    """YYYY-MM-DD only: 01/02/2026 means different days on either side of the Atlantic."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("input_formats", ["%Y-%m-%d"])
        super().__init__(*args, **kwargs)


class UtcDateTimeField(IsoDateTimeField):
    """The instant in UTC: PostgreSQL refuses offsets past 15:59 (Python allows 23:59), and
    SQLite's adapter overflows converting a time in year 1 or 9999 that UTC puts outside."""

    def to_python(self, value: Any) -> dt.datetime | None:
        result: dt.datetime | None = super().to_python(value)
        try:
            return result.astimezone(dt.UTC) if result is not None else None
        except OverflowError:
            raise forms.ValidationError(
                "Out of range: the time falls outside the years 1 to 9999 in UTC.", code="invalid"
            ) from None


class IsoDateTimeFilter(df.IsoDateTimeFilter):
    """ISO 8601 with its offset, e.g. 2026-11-24T09:00:00+01:00; sent to the database in UTC."""

    field_class = UtcDateTimeField


MAX_ID = 2**63 - 1  # the largest id a 64-bit column holds (SQLite, PostgreSQL bigint)


class IdFilter(df.NumberFilter):
    """A row's id: a whole number a database column holds. A fraction or a number of 20
    digits is a 400 that says so, not an overflow in the database driver."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)
        schema: dict[str, Any] = {"type": "integer", "format": "int64", "minimum": 1}
        schema["maximum"] = MAX_ID
        if kwargs.get("label"):
            schema["description"] = str(kwargs["label"])  # an override keeps only its own
        extend_schema_field(schema)(self)


def yes_no(method: str, label: str) -> df.ChoiceFilter:
    """A true/false filter that refuses "maybe" (django-filter's own boolean ignores it)."""
    return df.ChoiceFilter(choices=YES_NO, method=method, label=label)


def as_bool(value: str) -> bool:
    return value == "true"


class ObligationFilter(df.FilterSet):
    """Filters on the register's columns (`selectors.register`), so that the same filters
    work on the register as it stands and as it stood on a past date (`as_of`)."""

    # distinct=False: the status is the current cycle's, one per obligation, so there is
    # nothing to de-duplicate; DISTINCT made the database compute every matching row's
    # columns before the page's LIMIT (830 ms at 100k on SQLite).
    status = df.MultipleChoiceFilter(
        field_name="r_status", choices=CycleStatus.choices, distinct=False
    )
    overdue = yes_no("filter_overdue", "Overdue (true/false)")
    applicable = yes_no("filter_applicable", "Applicable (true/false)")
    due_before = IsoDateFilter(field_name="r_due", lookup_expr="lte", label="Due on or before")
    due_after = IsoDateFilter(field_name="r_due", lookup_expr="gte", label="Due on or after")
    organisation = IdFilter(field_name="provider__organisation_id")
    provider = IdFilter(field_name="provider_id")
    service = IdFilter(field_name="service_id")
    duty = df.CharFilter(field_name="duty__code", label="Duty code")
    section = df.CharFilter(field_name="duty__section", label="Section of the Act, e.g. s.9")
    owner = IdFilter(field_name="r_owner_id", label="Owner's user ID")
    updated_since = IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Obligation
        fields: list[str] = []

    def filter_overdue(self, qs: QuerySet[Obligation], name: str, value: str) -> QuerySet[Any]:
        overdue = register_overdue(register_day(self.request)[0])
        return qs.filter(overdue) if as_bool(value) else qs.exclude(overdue)

    def filter_applicable(self, qs: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return qs.filter(r_applicable=as_bool(value))


class EvidenceFilter(df.FilterSet):
    obligation = IdFilter(field_name="cycle__obligation_id")
    cycle = IdFilter(field_name="cycle_id")
    kind = df.ChoiceFilter(choices=EvidenceKind.choices)
    purged = yes_no("filter_purged", "Purged (true/false)")
    expires_before = IsoDateFilter(field_name="expires_on", lookup_expr="lte")
    uploaded_since = IsoDateTimeFilter(field_name="uploaded_at", lookup_expr="gte")

    class Meta:
        model = Evidence
        fields: list[str] = []

    def filter_purged(self, qs: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return qs.filter(purged_at__isnull=not as_bool(value))


class EventFilter(df.FilterSet):
    obligation = IdFilter(field_name="obligation_id")
    kind = df.ChoiceFilter(choices=EventKind.choices)
    actor = IdFilter(field_name="actor_id")
    since = IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = Event
        fields: list[str] = []


class ServiceFilter(df.FilterSet):
    provider = IdFilter(field_name="provider_id")
    organisation = IdFilter(field_name="provider__organisation_id")
    name = df.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Service
        fields: list[str] = []


class ProviderFilter(df.FilterSet):
    organisation = IdFilter(field_name="organisation_id")

    class Meta:
        model = Provider
        fields: list[str] = []


class DutyFilter(df.FilterSet):
    code = df.CharFilter()
    section = df.CharFilter()
    in_force = df.BooleanFilter(
        method="filter_in_force", help_text="In force today (the duty bites), or not."
    )

    def filter_in_force(self, queryset: QuerySet[Duty], name: str, value: bool) -> Any:
        now = in_force_q(london_today())
        return queryset.filter(now if value else ~now)

    class Meta:
        model = Duty
        fields: list[str] = []


class NoticeFilter(df.FilterSet):
    service = IdFilter(field_name="service_id")
    provider = IdFilter(field_name="service__provider_id")

    class Meta:
        fields: list[str] = []


class TechnologyNoticeFilter(NoticeFilter):
    stage = df.ChoiceFilter(choices=NoticeStage.choices)

    class Meta(NoticeFilter.Meta):
        model = TechnologyNotice


class OfcomNoticeFilter(NoticeFilter):
    kind = df.ChoiceFilter(choices=NoticeKind.choices)
    open = yes_no("filter_open", "Open (true/false)")

    class Meta(NoticeFilter.Meta):
        model = OfcomNotice

    def filter_open(self, qs: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return qs.filter(closed_on__isnull=as_bool(value))


class ReminderFilter(df.FilterSet):
    kind = df.ChoiceFilter(choices=ReminderKind.choices)
    status = df.ChoiceFilter(choices=ReminderStatus.choices)
    recipient = IdFilter(field_name="recipient_id")
    obligation = IdFilter(field_name="cycle__obligation_id")
    deadline_before = IsoDateFilter(field_name="deadline", lookup_expr="lte")
    deadline_after = IsoDateFilter(field_name="deadline", lookup_expr="gte")

    class Meta:
        model = Reminder
        fields: list[str] = []


class AssessmentFilter(df.FilterSet):
    service = IdFilter(field_name="service_id")
    kind = df.ChoiceFilter(choices=AssessmentKind.choices)

    class Meta:
        model = RiskAssessment
        fields: list[str] = []


class MeasureDecisionFilter(df.FilterSet):
    service = IdFilter(field_name="service_id")
    decision = df.ChoiceFilter(choices=MeasureDecisionKind.choices)
    measure = df.CharFilter(field_name="measure__code")

    class Meta:
        model = MeasureDecision
        fields: list[str] = []


def register_day(request: Any) -> tuple[dt.date, dt.date | None]:
    """(the day "overdue" is judged on, the `as_of` date or None) for a register request."""
    raw = request.query_params.get("as_of")
    if not raw:
        return london_today(), None
    as_of = parse_day(raw, "as_of")
    if as_of > london_today():
        raise exceptions.ValidationError({"as_of": ["The register's past, not its future."]})
    return as_of, as_of


def parse_day(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise exceptions.ValidationError(
            {name: [f"{value!r} is not a date: use YYYY-MM-DD."]}
        ) from None
