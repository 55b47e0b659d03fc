"""Screens for the substance of compliance: risk assessments rated harm by harm, and each
service's register of decisions on Ofcom's Codes measures. Writes go through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from obligations.access.selectors import can_edit, organisation_of, scope
from obligations.adminkit import ReadOnlyAdmin, ScopedHistoryAdmin, acting_user, form_errors_text
from obligations.assessments.actions import (
    AssessmentError,
    decide_measure,
    rate_entry,
    update_assessment_notes,
)
from obligations.assessments.models import (
    AssessmentEntry,
    MeasureDecision,
    MeasureDecisionKind,
    RiskAssessment,
)
from obligations.assessments.selectors import (
    FactorRules,
    factor_rules,
    measures_register,
    private_channel_gaps,
    undecided_measures,
    unrated_entries,
)
from obligations.catalogue.admin import CatalogueAdmin
from obligations.catalogue.models import CodeMeasure, HarmKind, RiskFactor
from obligations.catalogue.selectors import catalogue_parameters
from obligations.dates import display, london_today
from obligations.providers.models import Service
from obligations.register.models import Evidence, Obligation


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
            panel["rows"] = assessment.entries.count()
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


class EntryForm(forms.ModelForm):
    class Meta:
        model = AssessmentEntry
        fields = (
            "likelihood",
            "impact",
            "rationale",
            "private_channels",
            "risk_factors",
            "evidence",
            "evidence_notes",
        )
        widgets = {
            "rationale": forms.Textarea(attrs={"rows": 2, "cols": 40}),
            "private_channels": forms.Textarea(attrs={"rows": 2, "cols": 30}),
            "evidence_notes": forms.Textarea(attrs={"rows": 1, "cols": 24}),
        }

    def __init__(self, *args: Any, rules: FactorRules | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rules = rules
        params = catalogue_parameters()["assessment"]
        blank = [("", "—")]
        self.fields["likelihood"] = forms.ChoiceField(
            choices=blank + [(x, x.title()) for x in params["likelihood"]], required=False
        )
        self.fields["impact"] = forms.ChoiceField(
            choices=blank + [(x, x.title()) for x in params["impact"]], required=False
        )
        entry = self.instance
        if entry.pk:
            assessment = entry.assessment
            factors = RiskFactor.objects.filter(retired_at__isnull=True)
            self.fields["risk_factors"].queryset = RiskFactor.objects.filter(  # type: ignore[attr-defined]
                pk__in=[f.pk for f in factors if assessment.kind in f.assessments]
            )
            self.fields["evidence"].queryset = Evidence.objects.filter(  # type: ignore[attr-defined]
                cycle__obligation__service=assessment.service_id, purged_at__isnull=True
            )
        for name in ("risk_factors", "evidence"):
            self.fields[name].widget.attrs["size"] = 4
        brought = rules.brought(entry.harm_kind.code) if rules and entry.pk else []
        notes = [f.brought_in.get("requires_note", "") for f, _ in brought]
        notes = [note for note in notes if note]
        self.fields["private_channels"].widget.attrs["placeholder"] = (
            " ".join(notes) if notes else "Only where a risk factor's rule asks for it"
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("likelihood")) != bool(data.get("impact")):
            raise forms.ValidationError("Rate both the likelihood and the impact.")
        if data.get("rationale", "").strip() and not data.get("likelihood"):
            raise forms.ValidationError("Rate the likelihood and impact the rationale explains.")
        # The rule rate_entry applies, shown on the row rather than refused after the form.
        if self.rules is not None and self.has_changed() and data.get("likelihood"):
            problem = self.rules.problem(
                self.instance.harm_kind.code,
                [f.code for f in data.get("risk_factors", [])],
                data.get("private_channels", ""),
            )
            if problem:
                raise forms.ValidationError(problem[0].upper() + problem[1:] + ".")
        return data


class EntryFormSet(forms.BaseInlineFormSet):
    """Gives every row the assessment's risk factor rules, worked out once."""

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        kwargs = super().get_form_kwargs(index)
        if self.instance.pk is not None:
            if not hasattr(self, "_rules"):
                self._rules = factor_rules(self.instance)
            kwargs["rules"] = self._rules
        return kwargs


class EntryInline(admin.TabularInline):
    """Step 2: one row per harm kind (and age group); the level comes from the matrix."""

    model = AssessmentEntry
    form = EntryForm
    formset = EntryFormSet
    extra = 0
    can_delete = False
    fields = (
        "harm",
        "age_group",
        "likelihood",
        "impact",
        "level",
        "rationale",
        "private_channels",
        "risk_factors",
        "evidence",
        "evidence_notes",
    )
    readonly_fields = ("harm", "age_group", "level")
    verbose_name_plural = "2. assess the risk of harm: every row needs a level and a rationale"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return (
            scope(super().get_queryset(request), request.user)
            .select_related("harm_kind")
            .prefetch_related("risk_factors", "evidence")
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (
            obj is not None
            and not obj.cycle.is_closed
            and can_edit(request.user, organisation_of(obj))
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # the parent page is already scoped to the user's organisation

    @admin.display(description="harm kind")
    def harm(self, obj: AssessmentEntry) -> str:
        flag = "" if obj.harm_kind.verified else " (labels unverified)"
        return f"{obj.harm_kind.label}{flag}"


@admin.register(RiskAssessment)
class RiskAssessmentAdmin(ScopedHistoryAdmin):
    list_display = ("service", "kind", "started_on", "progress", "assessor", "approver")
    list_filter = ("kind", ("service", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("service", "assessor", "approver")
    search_fields = ("service__name",)
    inlines = [EntryInline]
    fields = (
        "service",
        "kind",
        "obligation",
        "assessor",
        "approver",
        "started_on",
        "approved_at",
        "progress",
        "understand_notes",
        "measures",
        "review_notes",
        "record",
    )
    # Only the notes of steps 1 and 4 are typed here; the rows are rated in the table below.
    readonly_fields = tuple(f for f in fields if f not in ("understand_notes", "review_notes"))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rated = ~Q(entries__level="") & ~Q(entries__rationale="")
        return (
            super()
            .get_queryset(request)
            .select_related("cycle__obligation")
            .annotate(rows=Count("entries"), rated=Count("entries", filter=rated))
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
        rows = getattr(obj, "rows", None)
        if rows is None:
            return "-"
        return f"{obj.rated} of {rows} rows rated with a rationale"

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

    @admin.display(description="3. decide measures, implement and record")
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


class DecisionForm(forms.Form):
    measure = forms.IntegerField(widget=forms.HiddenInput)
    decision = forms.ChoiceField(choices=[("", "— choose —"), *MeasureDecisionKind.choices])
    detail = forms.CharField(
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 2,
                "placeholder": "How it is done; how an alternative meets the duty; or why it "
                "does not apply",
            }
        ),
    )
    evidence = forms.ModelMultipleChoiceField(
        queryset=Evidence.objects.none(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 3}),
    )


def measures_register_view(
    model_admin: admin.ModelAdmin[Service], request: HttpRequest, object_id: str
) -> HttpResponse:
    """Every measure of the Codes that apply to the service: recommended or not, and why;
    the decision on each, recorded here."""
    service = model_admin.get_object(request, unquote(object_id))
    if service is None:
        raise Http404("No such service.")
    can_edit = model_admin.has_change_permission(request, service)
    evidence = Evidence.objects.filter(
        cycle__obligation__service=service, purged_at__isnull=True
    ).select_related("cycle__obligation__duty")
    if request.method == "POST":
        if not can_edit:
            raise Http404("No such service.")
        form = DecisionForm(request.POST)
        form.fields["evidence"].queryset = evidence  # type: ignore[attr-defined]
        if form.is_valid():
            measure = CodeMeasure.objects.filter(pk=form.cleaned_data["measure"]).first()
            try:
                if measure is None:
                    raise AssessmentError("No such measure.")
                decide_measure(
                    actor=acting_user(request),
                    service=service,
                    measure=measure,
                    decision=form.cleaned_data["decision"],
                    detail=form.cleaned_data["detail"],
                    evidence=form.cleaned_data["evidence"],
                )
                model_admin.message_user(request, f"Recorded: {measure.code}.", messages.SUCCESS)
            except AssessmentError as exc:
                model_admin.message_user(request, f"Not recorded: {exc}", messages.ERROR)
        else:
            model_admin.message_user(
                request, f"Not recorded: {form_errors_text(form)}", messages.ERROR
            )
        return HttpResponseRedirect(request.path)
    rows = measures_register(service, london_today())
    for row in rows:
        form = DecisionForm(
            initial={
                "measure": row["measure"].pk,
                "decision": row["decision"].decision if row["decision"] else "",
                "detail": row["decision"].detail if row["decision"] else "",
                "evidence": [e.pk for e in row["evidence"]],
            },
            auto_id=f"m{row['measure'].pk}_%s",
        )
        form.fields["evidence"].queryset = evidence  # type: ignore[attr-defined]
        row["form"] = form
    order = {True: 0, None: 1, False: 2}
    rows.sort(key=lambda r: (order[r["recommended"]], r["measure"].code))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": service,
        "title": f"Measures register: {service}",
        "rows": rows,
        "can_edit": can_edit,
        "undecided": [r for r in rows if r["recommended"] and not r["decision"]],
    }
    return TemplateResponse(request, "admin/obligations/service/measures.html", context)


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
