"""Screens for the substance of compliance: risk assessments rated harm by harm, and each
service's register of decisions on Ofcom's Codes measures. Writes go through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from obligations.adminkit import ReadOnlyAdmin, ScopedHistoryAdmin, acting_user
from obligations.assessments.actions import (
    rate_entry,
    update_assessment_notes,
)
from obligations.assessments.editor import EntryInline
from obligations.assessments.models import (
    AssessmentEntry,
    MeasureDecision,
    RiskAssessment,
)
from obligations.assessments.selectors import (
    private_channel_gaps,
    rating_progress,
    undecided_measures,
    unrated_entries,
)
from obligations.catalogue.admin import CatalogueAdmin
from obligations.catalogue.models import CodeMeasure, HarmKind, RiskFactor
from obligations.catalogue.selectors import catalogue_parameters
from obligations.dates import display
from obligations.register.models import Obligation


def assessment_panel(obligation: Obligation) -> dict[str, Any]:
    """What the obligation page shows about its assessment and the measures its duty needs."""
    panel: dict[str, Any] = {}
    cycle = obligation.current_cycle
    if obligation.duty.assessment_kind and cycle is not None:
        assessment = RiskAssessment.objects.filter(cycle=cycle).first()
        panel["assessment_duty"] = True
        panel["assessment"] = assessment
        if assessment is not None:
            panel["unrated"] = unrated_entries(assessment)
            panel["channel_gaps"] = private_channel_gaps(assessment)
            panel["progress"] = rating_progress(assessment.entries.only("level", "rationale"))
    if obligation.service is not None and obligation.duty.measures.exists():
        panel["undecided"] = undecided_measures(obligation.service, obligation.duty)
        panel["register_url"] = reverse(
            "admin:obligations_service_measures", args=[obligation.service_id]
        )
    return panel


@admin.register(HarmKind)
class HarmKindAdmin(CatalogueAdmin):
    list_display = ("label", "family", "group", "effective_from", "effective_until", "verified")
    list_filter = ("family", "verified")
    search_fields = ("code", "label")


@admin.register(RiskFactor)
class RiskFactorAdmin(CatalogueAdmin):
    list_display = ("label", "group", "verified")
    list_filter = ("group",)
    search_fields = ("code", "label")


@admin.register(CodeMeasure)
class CodeMeasureAdmin(CatalogueAdmin):
    list_display = (
        "code",
        "area",
        "summary",
        "status",
        "issued_on",
        "effective_from",
        "basis",
        "verified",
    )
    list_filter = ("code_family", "status", "basis", "area")
    search_fields = ("code", "summary")


class RiskAssessmentForm(forms.ModelForm):
    class Meta:
        model = RiskAssessment
        fields = ("understand_notes", "review_notes")
        # The step's heading names it; the field says what goes in it.
        labels = {
            "understand_notes": "The harms considered",
            "review_notes": "Reported and reviewed",
        }


@admin.register(RiskAssessment)
class RiskAssessmentAdmin(ScopedHistoryAdmin):
    list_display = ("service", "kind", "started_on", "progress", "assessor", "approver")
    list_filter = ("kind", ("service", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("service", "assessor", "approver")
    search_fields = ("service__name",)
    inlines = [EntryInline]
    form = RiskAssessmentForm
    # The change form shows Ofcom's four steps in order: the first two fieldsets, then the
    # rows (step 2), then the rest (see its template).
    change_form_template = "admin/obligations/riskassessment/change_form.html"
    summary = (
        "service",
        "kind",
        "obligation",
        "assessor",
        "approver",
        "started_on",
        "approved_at",
        "progress",
        "record",
    )
    # Only the notes of steps 1 and 4 are typed here; the rows are rated step by step below.
    readonly_fields = (*summary, "measures")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        steps = catalogue_parameters()["assessment"]["steps"]
        return [
            (None, {"fields": self.summary}),
            (f"1. {steps[0]}", {"fields": ("understand_notes",)}),
            (f"3. {steps[2]}", {"fields": ("measures",)}),
            (f"4. {steps[3]}", {"fields": ("review_notes",)}),
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rows = AssessmentEntry.objects.only("assessment_id", "level", "rationale")
        return (
            super()
            .get_queryset(request)
            .select_related("cycle__obligation")
            .prefetch_related(Prefetch("entries", queryset=rows, to_attr="rows"))
        )

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # started from the obligation's page, for its cycle

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.cycle.is_closed:
            return False  # the record of a met or closed cycle is frozen
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if {"understand_notes", "review_notes"} & set(form.changed_data):
            update_assessment_notes(
                actor=acting_user(request),
                assessment=obj,
                understand=form.cleaned_data["understand_notes"],
                review=form.cleaned_data["review_notes"],
            )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # The admin's change message reads what formset.save() would have recorded.
        formset.new_objects, formset.deleted_objects, formset.changed_objects = [], [], []
        for entry_form in formset.forms:
            if not entry_form.has_changed() or not entry_form.cleaned_data.get("likelihood"):
                continue
            formset.changed_objects.append((entry_form.instance, entry_form.changed_data))
            data = entry_form.cleaned_data
            rate_entry(
                actor=acting_user(request),
                entry=entry_form.instance,
                likelihood=data["likelihood"],
                impact=data["impact"],
                rationale=data["rationale"],
                risk_factors=data["risk_factors"],
                evidence=data["evidence"],
                evidence_notes=data["evidence_notes"],
                private_channels=data["private_channels"],
            )

    @admin.display(description="progress")
    def progress(self, obj: Any) -> str:
        return f"{rating_progress(obj.rows)} (a level and a rationale)"

    @admin.display(description="obligation cycle")
    def obligation(self, obj: RiskAssessment) -> str:
        url = reverse("admin:obligations_obligation_change", args=[obj.cycle.obligation_id])
        return format_html(
            '<a href="{}">{}</a> (due {}, {})',
            url,
            obj.cycle.obligation.duty.code,
            display(obj.cycle.due_date) if obj.cycle.due_date else "no due date",
            obj.cycle.get_status_display(),
        )

    @admin.display(description="measures")
    def measures(self, obj: RiskAssessment) -> str:
        url = reverse("admin:obligations_service_measures", args=[obj.service_id])
        return format_html(
            "The levels recorded here decide which of Ofcom's measures are recommended: "
            '<a href="{}">the measures register of {}</a>.',
            url,
            obj.service,
        )

    @admin.display(description="printable record")
    def record(self, obj: RiskAssessment) -> str:
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">Open to print</a> '
            '(<a href="{}" id="assessment-pdf">PDF</a>)',
            reverse("assessment-record", args=[obj.pk]),
            reverse("assessment-record-pdf", args=[obj.pk]),
        )


@admin.register(MeasureDecision)
class MeasureDecisionAdmin(ReadOnlyAdmin, ScopedHistoryAdmin):
    """Every decision and its history; decisions are made in each service's register."""

    list_display = ("measure", "service", "decision", "decided_by", "decided_at")
    list_filter = (
        "decision",
        "measure__code_family",
        ("service", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("measure", "service", "decided_by")
    search_fields = ("measure__code", "service__name", "detail")
    fields = ("service", "measure", "decision", "detail", "evidence", "decided_by", "decided_at")
    readonly_fields = fields
