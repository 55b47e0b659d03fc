"""A service's measures register: every measure of the Codes that apply, grouped by Code and
area with its decision, in one form. Several measures can be decided at once (one decision,
one rationale) and any row on its own; a submission is recorded whole or, refused, shown again
as typed with each error beside its field. Writes go through `decide_measures`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.text import slugify

from obligations.adminkit import acting_user
from obligations.assessments.actions import Decision, DecisionsRefused, decide_measures
from obligations.assessments.codes import CODE_TITLES
from obligations.assessments.models import MeasureDecisionKind
from obligations.assessments.selectors import measures_register, register_progress
from obligations.catalogue.models import CodeMeasure
from obligations.dates import london_today
from obligations.providers.models import Service
from obligations.register.models import Evidence

CHOOSE = [("", "— choose —")]


class MeasureSelection(forms.MultipleChoiceField):
    """The measures ticked: any measure's id is taken here, so that one outside the register
    is refused by the rules, by its name, rather than as an unknown choice."""

    default_error_messages = {"invalid_choice": "No such measure: the boxes send a measure's id."}

    def valid_value(self, value: Any) -> bool:
        # 18 digits at most: within a database integer whatever the id, never an overflow.
        text = str(value)
        return text.isascii() and text.isdigit() and len(text) <= 18


class BulkDecisionForm(forms.Form):
    selected = MeasureSelection(required=False, label="Measures selected")
    decision = forms.ChoiceField(
        choices=[*CHOOSE, *MeasureDecisionKind.choices],
        required=False,
        label="Decision for the selected measures",
    )
    detail = forms.CharField(
        required=False,
        label="Rationale",
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": "Recorded on each measure selected"}
        ),
    )
    evidence = forms.MultipleChoiceField(
        required=False, widget=forms.SelectMultiple(attrs={"size": 2})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        count = len(data.get("selected") or [])
        measures = f"{count} selected measure{'s' if count != 1 else ''}"
        if count and not data.get("decision"):
            self.add_error("decision", f"Choose the decision for the {measures}.")
        if count and not data.get("detail", "").strip():
            self.add_error("detail", f"Type the rationale: it is recorded on the {measures}.")
        if not count and (data.get("decision") or data.get("detail", "").strip()):
            self.add_error("selected", "Select the measures this decision is for.")
        return data


class RowForm(forms.Form):
    """One measure's decision, changed on its own row."""

    decision = forms.ChoiceField(
        choices=[*CHOOSE, *MeasureDecisionKind.choices], required=False, label="Decision"
    )
    detail = forms.CharField(
        required=False,
        label="How or why",
        widget=forms.Textarea(
            attrs={
                "rows": 2,
                "placeholder": "How it is done; how an alternative meets the duty; or why it "
                "does not apply",
            }
        ),
    )
    evidence = forms.MultipleChoiceField(
        required=False, widget=forms.SelectMultiple(attrs={"size": 3})
    )


def _natural(code: str) -> list[Any]:
    """ICU C2 before ICU C10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", code)]


def _groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows by Code (in CODE_TITLES' order), then by area in the order of its measures."""
    order = list(CODE_TITLES)
    rows = sorted(
        rows,
        key=lambda r: (
            order.index(r["measure"].code_family) if r["measure"].code_family in order else 99,
            _natural(r["measure"].code),
        ),
    )
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        family, area = row["measure"].code_family, row["measure"].area
        group = groups.setdefault(
            (family, area),
            {
                "code": CODE_TITLES.get(family, family),
                "area": area,
                "id": slugify(f"{family} {area}"),
                "rows": [],
            },
        )
        group["rows"].append(row)
    for group in groups.values():
        group["progress"] = register_progress(group["rows"])
    return list(groups.values())


def _refuse(
    refusals: DecisionsRefused, bulk: BulkDecisionForm, origins: dict[str, list[forms.Form]]
) -> None:
    """Each refusal beside the field it is about: on the bulk decision naming the measure,
    or on the measure's own row."""
    for refusal in refusals.refusals:
        for form in origins.get(refusal.measure, [bulk]):
            field: str | None
            if form is bulk:
                field = "selected" if refusal.field == "measure" else refusal.field
                form.add_error(field, f"{refusal.measure}: {refusal.message}")
            else:
                field = None if refusal.field == "measure" else refusal.field
                form.add_error(field, refusal.message)


def _decisions(
    bulk: BulkDecisionForm,
    rows: list[dict[str, Any]],
    evidence: dict[str, Evidence],
) -> tuple[list[Decision], dict[str, list[forms.Form]]]:
    """What the submission asks to record, and which form asked for each measure."""
    decisions: list[Decision] = []
    origins: dict[str, list[forms.Form]] = {}
    chosen = bulk.cleaned_data.get("selected") or []
    if chosen:
        by_pk = {str(r["measure"].pk): r["measure"] for r in rows}
        missing = [pk for pk in chosen if pk not in by_pk]
        by_pk.update({str(m.pk): m for m in CodeMeasure.objects.filter(pk__in=missing)})
        unknown = [pk for pk in chosen if pk not in by_pk]
        if unknown:
            bulk.add_error("selected", f"No such measure: {', '.join(unknown)}.")
            return [], origins
        for pk in chosen:
            measure = by_pk[pk]
            decisions.append(
                Decision(
                    measure,
                    bulk.cleaned_data["decision"],
                    bulk.cleaned_data["detail"],
                    tuple(evidence[e] for e in bulk.cleaned_data["evidence"]),
                )
            )
            origins.setdefault(measure.code, []).append(bulk)
    for row in rows:
        form = row["form"]
        if form.has_changed():
            data = form.cleaned_data
            decisions.append(
                Decision(
                    row["measure"],
                    data["decision"],
                    data["detail"],
                    tuple(evidence[e] for e in data["evidence"]),
                )
            )
            origins.setdefault(row["measure"].code, []).append(form)
    return decisions, origins


def _recorded(written: Iterable[Any], asked: int) -> tuple[int, str]:
    codes = [record.measure.code for record in written]
    if not codes:
        if not asked:
            return messages.INFO, "Nothing to record: no measure selected and no row changed."
        return messages.INFO, "Nothing changed: each measure already had that decision."
    plural = "s" if len(codes) != 1 else ""
    return messages.SUCCESS, f"Recorded {len(codes)} decision{plural}: {', '.join(codes)}."


def measures_register_view(
    model_admin: admin.ModelAdmin[Service], request: HttpRequest, object_id: str
) -> HttpResponse:
    """Every measure of the Codes that apply to the service: recommended or not, and why, and
    the decision on each, decided here several at a time or one by one."""
    service = model_admin.get_object(request, unquote(object_id))
    if service is None:
        raise Http404("No such service.")
    can_edit = model_admin.has_change_permission(request, service)
    if request.method == "POST" and not can_edit:
        raise PermissionDenied("Your role can read this register but not decide its measures.")
    # What can be chosen, and what is chosen already (a purged item stays on the decisions
    # that cite it, so that submitting a row unchanged does not drop it).
    evidence = {
        str(e.pk): e
        for e in Evidence.objects.filter(cycle__obligation__service=service)
        .filter(Q(purged_at__isnull=True) | Q(measure_decisions__service=service))
        .select_related("cycle__obligation__duty")
        .distinct()
    }
    evidence_choices = [
        (pk, f"{e.title} ({e.cycle.obligation.duty.code}){' (purged)' if e.purged_at else ''}")
        for pk, e in evidence.items()
    ]
    rows = measures_register(service, london_today())
    data = request.POST if request.method == "POST" else None
    bulk = BulkDecisionForm(data, auto_id="bulk_%s")
    bulk.fields["evidence"].choices = evidence_choices  # type: ignore[attr-defined]
    for row in rows:
        decision = row["decision"]
        form = RowForm(
            data,
            prefix=f"m{row['measure'].pk}",
            initial={
                "decision": decision.decision if decision else "",
                "detail": decision.detail if decision else "",
                "evidence": [str(e.pk) for e in row["evidence"]],
            },
        )
        form.fields["evidence"].choices = evidence_choices  # type: ignore[attr-defined]
        row["form"] = form
    if data is not None:
        valid = all([bulk.is_valid(), *(row["form"].is_valid() for row in rows)])
        decisions, origins = _decisions(bulk, rows, evidence) if valid else ([], {})
        if valid and not bulk.errors:  # _decisions refuses ids that name no measure
            try:
                written = decide_measures(
                    actor=acting_user(request), service=service, decisions=decisions
                )
            except DecisionsRefused as refused:
                _refuse(refused, bulk, origins)
            else:
                level, text = _recorded(written, len(decisions))
                model_admin.message_user(request, text, level)
                return HttpResponseRedirect(request.path)
    selected = set(bulk["selected"].value() or []) if data is not None else set()
    for row in rows:
        row["selected"] = str(row["measure"].pk) in selected
        row["open"] = data is not None and (row["form"].has_changed() or row["form"].errors)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": service,
        "title": f"Measures register: {service}",
        "groups": _groups(rows),
        "progress": register_progress(rows),
        "bulk": bulk,
        "refused": data is not None,
        "can_edit": can_edit,
    }
    return TemplateResponse(request, "admin/obligations/service/measures.html", context)
