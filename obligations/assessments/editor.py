"""Step 2 of a risk assessment in the admin: its rows rated harm by harm, in collapsible groups,
with the risk factors as labelled checkboxes. Saving goes through the assessment's actions (in
its admin); this is the form, its checks, and how the rows are laid out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

from obligations.access.selectors import can_edit, organisation_of, scope
from obligations.assessments.models import AssessmentEntry, RiskAssessment
from obligations.assessments.selectors import (
    FactorRules,
    RatingProgress,
    factor_rules,
    factors_for,
    rating_progress,
)
from obligations.catalogue.models import RiskFactor
from obligations.catalogue.selectors import catalogue_parameters
from obligations.register.models import Evidence

LABELS = {
    "likelihood": "Likelihood",
    "impact": "Impact",
    "rationale": "Rationale",
    "private_channels": "Private and encrypted channels",
    "risk_factors": "Risk factors",
    "evidence": "Evidence",
    "evidence_notes": "Evidence notes",
}


class KnownChoices(forms.ModelMultipleChoiceField):
    """A choice of objects fetched once for the whole formset, so that neither showing nor
    checking a row's choice costs a query per row."""

    def __init__(
        self, none: QuerySet[Any], objects: Iterable[Model], grouped: list[Any], **kwargs: Any
    ) -> None:
        super().__init__(queryset=none, required=False, **kwargs)
        self.known = {str(o.pk): o for o in objects}
        self.choices = grouped

    def _check_values(self, value: Iterable[Any]) -> Any:
        unknown = [v for v in value if str(v) not in self.known]
        if unknown:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": unknown[0]},
            )
        return [self.known[str(v)] for v in value]


class RowId(forms.ModelChoiceField):
    """A row's id, found among the rows the formset fetched: Django's own looks each row up
    with a query of its own."""

    def __init__(self, rows: dict[str, AssessmentEntry], **kwargs: Any) -> None:
        super().__init__(queryset=AssessmentEntry.objects.none(), **kwargs)
        self.rows = rows

    def to_python(self, value: Any) -> AssessmentEntry | None:
        if value in self.empty_values:
            return None
        try:
            return self.rows[str(value)]
        except KeyError:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            ) from None


@dataclass(frozen=True)
class RowChoices:
    """What every row of one assessment may choose from, worked out once per page."""

    rules: FactorRules
    factors: list[RiskFactor]
    evidence: list[Evidence]
    ages: dict[str, str]  # age group code -> label
    scales: dict[str, list[str]]  # likelihood and impact -> their values, lowest first

    def factor_choices(self) -> list[Any]:
        groups: dict[str, list[tuple[int, str]]] = {}
        for factor in self.factors:
            label = f"{factor.label} (retired)" if factor.retired_at else factor.label
            groups.setdefault(factor.group, []).append((factor.pk, label))
        return list(groups.items())


def row_choices(assessment: RiskAssessment) -> RowChoices:
    params = catalogue_parameters()["assessment"]
    # What a row already cites stays a choice, purged evidence or a retired factor included:
    # otherwise the page, sent back unchanged, would drop it from the record.
    cited = AssessmentEntry.objects.filter(assessment=assessment)
    evidence = Evidence.objects.filter(
        Q(purged_at__isnull=True) | Q(pk__in=cited.values("evidence")),
        cycle__obligation__service=assessment.service_id,
    ).order_by("title", "pk")
    factors = factors_for(assessment.kind)
    retired = RiskFactor.objects.filter(pk__in=cited.values("risk_factors")).exclude(
        pk__in=[f.pk for f in factors]
    )
    return RowChoices(
        rules=factor_rules(assessment),
        factors=[*factors, *retired.order_by("group", "label")],
        evidence=list(evidence),
        ages={a["code"]: a["label"] for a in params["age_groups"]},
        scales={name: list(params[name]) for name in ("likelihood", "impact")},
    )


class EntryForm(forms.ModelForm):
    class Meta:
        model = AssessmentEntry
        fields = tuple(LABELS)
        labels = LABELS
        widgets = {
            "rationale": forms.Textarea(attrs={"rows": 3}),
            "private_channels": forms.Textarea(attrs={"rows": 2}),
            "evidence_notes": forms.Textarea(attrs={"rows": 1}),
        }

    def __init__(self, *args: Any, choices: RowChoices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rules = choices.rules
        for name, scale in choices.scales.items():
            self.fields[name] = forms.ChoiceField(
                label=LABELS[name],
                choices=[("", "— not rated —")] + [(x, x.title()) for x in scale],
                required=False,
            )
        self.fields["risk_factors"] = KnownChoices(
            RiskFactor.objects.none(),
            choices.factors,
            choices.factor_choices(),
            label=LABELS["risk_factors"],
            widget=forms.CheckboxSelectMultiple,
        )
        self.fields["evidence"] = KnownChoices(
            Evidence.objects.none(),
            choices.evidence,
            [(e.pk, f"{e.title} (purged)" if e.purged_at else e.title) for e in choices.evidence],
            label=LABELS["evidence"],
            widget=forms.CheckboxSelectMultiple,
        )
        entry = self.instance
        age = choices.ages.get(entry.age_group, entry.age_group)
        self.age_label = f"Ages {age}" if entry.age_group else ""
        brought = self.rules.brought(entry.harm_kind.code)
        notes = [note for f, _ in brought if (note := f.brought_in.get("requires_note", ""))]
        self.fields["private_channels"].widget.attrs["placeholder"] = (
            " ".join(notes) if notes else "Only where a risk factor's rule asks for it"
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        likelihood, impact = data.get("likelihood"), data.get("impact")
        if likelihood and not impact:
            self.add_error("impact", "Rate both the likelihood and the impact: choose the impact.")
        elif impact and not likelihood:
            self.add_error(
                "likelihood", "Rate both the likelihood and the impact: choose the likelihood."
            )
        elif not likelihood and self.instance.level:
            self.add_error(
                "likelihood",
                "A rated row keeps its likelihood and impact: change them rather than clear them.",
            )
        elif data.get("rationale", "").strip() and not likelihood:
            self.add_error("likelihood", "Rate the likelihood and impact the rationale explains.")
        # The rule rate_entry applies, shown next to the field rather than refused after the form.
        if likelihood and impact and self.has_changed():
            name, problem = self.rules.problem_at(
                self.instance.harm_kind.code,
                [f.code for f in data.get("risk_factors", [])],
                data.get("private_channels", ""),
            )
            if problem:
                self.add_error(name, problem[0].upper() + problem[1:].rstrip(".") + ".")
        return data


@dataclass
class HarmGroup:
    """The rows of one harm kind (one per age group, for children's assessments)."""

    label: str
    anchor: str
    verified: bool
    forms: list[EntryForm] = field(default_factory=list)
    open: bool = False

    @property
    def progress(self) -> RatingProgress:
        return rating_progress(f.instance for f in self.forms)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.forms if f.errors)


class EntryFormSet(forms.BaseInlineFormSet):
    """The assessment's rows, grouped by harm kind, each given what it may choose from."""

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {**super().get_form_kwargs(index), "choices": self.choices}

    @cached_property
    def choices(self) -> RowChoices:
        return row_choices(self.instance)

    @cached_property
    def rows(self) -> dict[str, AssessmentEntry]:
        return {str(entry.pk): entry for entry in self.get_queryset()}

    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        given = form.fields["id"]
        form.fields["id"] = RowId(
            self.rows, initial=given.initial, required=False, widget=given.widget
        )

    @cached_property
    def groups(self) -> list[HarmGroup]:
        """Open: after a refused save, the groups with an error or a change; otherwise the
        first not fully rated."""
        groups: dict[int, HarmGroup] = {}
        for form in self.forms:
            harm = form.instance.harm_kind
            group = groups.setdefault(
                harm.pk,
                HarmGroup(label=harm.label, anchor=f"harm-{harm.code}", verified=harm.verified),
            )
            group.forms.append(form)
        found = list(groups.values())
        if any(g.errors for g in found):
            # A refused save shows what was typed as well as what to correct.
            opened = [g for g in found if g.errors or any(f.has_changed() for f in g.forms)]
        else:
            opened = [g for g in found if g.progress.rated < g.progress.rows][:1]
        for group in opened:
            group.open = True
        return found

    @property
    def progress(self) -> RatingProgress:
        return rating_progress(f.instance for f in self.forms)

    def error_summary(self) -> list[dict[str, Any]]:
        """Every error on the page: the row, the field it names, and where to find it."""
        found = []
        for group in self.groups:
            for form in group.forms:
                row = f"{group.label}, {form.age_label}" if form.age_label else group.label
                for name, errors in form.errors.items():
                    bound = form[name] if name in form.fields else None
                    for error in errors:
                        found.append(
                            {
                                "row": row,
                                "field": LABELS.get(name, ""),
                                "error": error,
                                "anchor": bound.auto_id if bound else f"entry-{form.instance.pk}",
                            }
                        )
        return found


class EntryInline(admin.StackedInline):
    """Step 2: one row per harm kind (and age group); the level comes from the matrix."""

    model = AssessmentEntry
    form = EntryForm
    formset = EntryFormSet
    template = "admin/obligations/riskassessment/entries.html"
    extra = 0
    can_delete = False
    fields = tuple(LABELS)
    verbose_name_plural = "2. Assess the risk of harm"

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
