"""Obligations in the admin: filters, the workflow's buttons and bulk actions, evidence."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal

from obligations.access.models import Role
from obligations.access.selectors import (
    can_edit,
    has_role,
    may_transition,
    organisation_of,
    scope,
    search_related,
)
from obligations.adminkit import (
    CountedOnceAdmin,
    ReadOnlyInline,
    RegisterChangeList,
    RegisterColumns,
    ScopedHistoryAdmin,
    ScopedRelatedFilter,
    SortKeysFirstPaginator,
    acting_user,
    colleagues,
    form_errors_text,
    status_badge,
)
from obligations.adminsearch import FilterChoicesAdmin, SearchableRelatedFilter
from obligations.assessments.actions import AssessmentError, start_assessment
from obligations.assessments.admin import assessment_panel
from obligations.dates import london_today, validate_plausible_date
from obligations.inputs import validate_single_line
from obligations.register.actions import assign_owner
from obligations.register.admin_filters import MyWorkFilter, OverdueFilter, StateFilter
from obligations.register.admin_import import ImportRegisterAdminMixin
from obligations.register.evidence import add_evidence_file, add_evidence_link, purge_evidence
from obligations.register.models import Event, Evidence, Obligation, ObligationCycle
from obligations.register.selectors import (
    evidence_for,
    my_work,
    obligations_for_list,
)
from obligations.register.states import (
    CycleStatus,
    EventSource,
    TransitionError,
)
from obligations.register.uploads import EvidenceRefused
from obligations.register.workflow import TRANSITIONS, check_can_be_met, transition_to

TRANSITION_LABELS: dict[str, str] = {
    CycleStatus.IN_PROGRESS: "Start work",
    CycleStatus.READY_FOR_REVIEW: "Submit for review",
    CycleStatus.MET: "Approve: met for this cycle",
    CycleStatus.SENT_BACK: "Send back",
    CycleStatus.NOT_APPLICABLE: "Mark not applicable",
}


def _refusal(user: Any, cycle: ObligationCycle) -> str:
    try:
        check_can_be_met(user, cycle)
    except TransitionError as refused:
        return str(refused)
    return ""


class CycleInline(ReadOnlyInline):
    model = ObligationCycle
    fields = (
        "period_start",
        "due_date",
        "status",
        "trigger",
        "trigger_note",
        "status_reason",
        "closed_at",
    )
    readonly_fields = fields
    show_change_link = False


class EventInline(ReadOnlyInline):
    model = Event
    fields = ("at", "kind", "from_status", "to_status", "actor", "source", "reason")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("actor")


class EvidenceForm(forms.Form):
    """A file or a link; the upload is hashed as it streams in (see uploads.py)."""

    title = forms.CharField(max_length=200, required=False, validators=[validate_single_line])
    file = forms.FileField(required=False)
    url = forms.URLField(required=False, label="or a link", assume_scheme="https")
    expires_on = forms.DateField(
        required=False, help_text="DD/MM/YYYY; optional", validators=[validate_plausible_date]
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("file")) == bool(data.get("url")):
            raise forms.ValidationError("Give either a file or a link.")
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class OwnerForm(forms.Form):
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False)


def _bulk(target: str, label: str) -> Any:
    """A bulk action that moves each selected obligation through the same service function."""

    def action(modeladmin: ObligationAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        moved, refused = 0, []
        for obligation in queryset.select_related("current_cycle", "duty", "service"):
            if obligation.current_cycle is None:
                continue
            try:
                transition_to(
                    actor=acting_user(request),
                    cycle=obligation.current_cycle,
                    to=target,
                    source=EventSource.BULK,
                )
                moved += 1
            except TransitionError as exc:
                refused.append(f"{obligation}: {exc}")
        if moved:
            modeladmin.message_user(request, f"{label}: {moved} obligation(s).", messages.SUCCESS)
        for line in refused:
            modeladmin.message_user(request, line, messages.ERROR)

    action.__name__ = f"bulk_{target}"
    return admin.action(description=f"{label} (selected obligations)")(action)


@admin.register(Obligation)
class ObligationAdmin(
    RegisterColumns,
    ImportRegisterAdminMixin,
    FilterChoicesAdmin,
    CountedOnceAdmin,
    ScopedHistoryAdmin,
):
    list_display = (
        "duty_code",
        "section",
        "duty_title",
        "service_or_provider",
        "cycle_status",
        "due",
        "owner",
        "applicable",
    )
    list_filter = (
        MyWorkFilter,
        OverdueFilter,
        StateFilter,
        # Searched by name where there are thousands (adminsearch.py).
        ("provider__organisation", SearchableRelatedFilter),
        ("provider", SearchableRelatedFilter),
        ("service", SearchableRelatedFilter),
        ("duty", ScopedRelatedFilter),
        "status",
        "applicable",
        ("owner", ScopedRelatedFilter),
        "duty__section",
        "duty__verified",
    )
    search_fields = (
        "duty__code",
        "duty__title",
        "duty__section",
        "service__name",
        "provider__name",
    )
    list_per_page = 100
    paginator = SortKeysFirstPaginator
    fields = (
        "duty_summary",
        "provider",
        "service",
        "owner",
        "why",
        "applicable",
        "not_applicable_reason",
        "notes",
        "external_ref",
    )
    readonly_fields = (
        "duty_summary",
        "provider",
        "service",
        "why",
        "applicable",
        "not_applicable_reason",
        "notes",
        "external_ref",
    )
    autocomplete_fields = ("owner",)
    inlines = [CycleInline, EventInline]
    change_form_template = "admin/obligations/obligation/change_form.html"
    actions = [
        "bulk_assign_owner",
        _bulk(CycleStatus.IN_PROGRESS, "Start work"),
        _bulk(CycleStatus.READY_FOR_REVIEW, "Submit for review"),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return obligations_for_list(request.user)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return RegisterChangeList

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if obj is not None and obj.owner_id and "owner" in form.base_fields:
            # An owner who has since left stays a valid answer until someone reassigns the
            # work: the page is saved as it is shown, never refused for what nobody changed.
            field = form.base_fields["owner"]
            field.queryset = field.queryset | get_user_model().objects.filter(pk=obj.owner_id)  # type: ignore[attr-defined]
        return form

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # Words split as ModelAdmin.get_search_results splits them, condition for condition:
        # a quoted phrase is one term.
        terms = [
            unescape_string_literal(bit)
            if bit.startswith(('"', "'")) and bit[0] == bit[-1]
            else bit
            for bit in smart_split(search_term)
        ]
        return search_related(queryset, self.get_search_fields(request), terms), False

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # obligations come from applying the catalogue to a service

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return super().get_actions(request) if can_edit(request.user) else {}

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Only the owner is editable here, and it changes through the service (with an event).
        if "owner" in form.changed_data:
            assign_owner(
                actor=acting_user(request),
                obligation=Obligation.objects.get(pk=obj.pk),
                owner=form.cleaned_data["owner"],
                source=EventSource.ADMIN,
            )

    @admin.action(description="Assign an owner (selected obligations)")
    def bulk_assign_owner(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        form = OwnerForm(request.POST if "apply" in request.POST else None)
        form.fields["owner"].queryset = colleagues(request)  # type: ignore[attr-defined]
        if form.is_bound and form.is_valid():
            for obligation in queryset.select_related("current_cycle", "owner"):
                assign_owner(
                    actor=acting_user(request),
                    obligation=obligation,
                    owner=form.cleaned_data["owner"],
                    source=EventSource.BULK,
                )
            self.message_user(request, f"Owner set on {queryset.count()} obligation(s).")
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "queryset": queryset,
            "title": "Assign an owner",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/obligations/obligation/assign_owner.html", context)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path("my-work/", view(self.my_work_view), name="obligations_obligation_my_work"),
            path(
                "<path:object_id>/transition/",
                view(self.transition_view),
                name="obligations_obligation_transition",
            ),
            path(
                "<path:object_id>/start-assessment/",
                view(self.start_assessment_view),
                name="obligations_obligation_start_assessment",
            ),
            path(
                "<path:object_id>/evidence/",
                view(self.evidence_view),
                name="obligations_obligation_evidence",
            ),
            path(
                "evidence/<int:evidence_id>/purge/",
                view(self.purge_view),
                name="obligations_evidence_purge",
            ),
            *super().get_urls(),
        ]

    def _visible_obligation(self, request: HttpRequest, object_id: str) -> Obligation:
        obligation = self.get_object(request, unquote(object_id))
        if obligation is None:
            raise Http404("No such obligation.")
        return obligation

    def _editable_obligation(self, request: HttpRequest, object_id: str) -> Obligation:
        obligation = self._visible_obligation(request, object_id)
        if not self.has_change_permission(request, obligation):
            raise PermissionDenied
        return obligation

    def _back(self, obligation: Obligation) -> HttpResponse:
        return HttpResponseRedirect(
            reverse("admin:obligations_obligation_change", args=[obligation.pk])
        )

    def transition_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obligation = self._visible_obligation(request, object_id)
        target = request.POST.get("to", "")
        if not may_transition(request.user, organisation_of(obligation), target):
            raise PermissionDenied
        form = ReasonForm(request.POST)
        form.is_valid()
        try:
            if obligation.current_cycle is None:
                raise TransitionError("This obligation has no open cycle.")
            cycle = transition_to(
                actor=acting_user(request),
                cycle=obligation.current_cycle,
                to=target,
                reason=form.cleaned_data.get("reason", ""),
                source=EventSource.ADMIN,
            )
            self.message_user(
                request, f"Now {cycle.get_status_display().lower()}.", messages.SUCCESS
            )
        except TransitionError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        return self._back(obligation)

    def evidence_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obligation = self._editable_obligation(request, object_id)
        cycle = obligation.current_cycle
        files = request.FILES  # parsing the upload is what sets evidence_too_large
        if getattr(request, "evidence_too_large", False):
            limit = settings.EVIDENCE_MAX_BYTES
            self.message_user(
                request,
                f"The file is larger than the {limit:,}-byte limit; nothing was stored.",
                messages.ERROR,
            )
            return self._back(obligation)
        form = EvidenceForm(request.POST, files)
        if cycle is None or cycle.is_closed:
            self.message_user(
                request, "Evidence belongs to an open cycle; this one is closed.", messages.ERROR
            )
        elif not form.is_valid():
            self.message_user(
                request, f"Evidence not added: {form_errors_text(form)}", messages.ERROR
            )
        else:
            data = form.cleaned_data
            try:
                if data["file"]:
                    add_evidence_file(
                        actor=acting_user(request),
                        cycle=cycle,
                        uploaded=data["file"],
                        title=data["title"],
                        expires_on=data["expires_on"],
                        source=EventSource.ADMIN,
                    )
                else:
                    add_evidence_link(
                        actor=acting_user(request),
                        cycle=cycle,
                        url=data["url"],
                        title=data["title"],
                        expires_on=data["expires_on"],
                        source=EventSource.ADMIN,
                    )
                self.message_user(request, "Evidence added.", messages.SUCCESS)
            except (EvidenceRefused, ValidationError) as exc:
                message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
                self.message_user(request, f"Evidence not added: {message}", messages.ERROR)
        return self._back(obligation)

    def purge_view(self, request: HttpRequest, evidence_id: int) -> HttpResponse:
        evidence = get_object_or_404(
            scope(Evidence.objects.select_related("cycle__obligation"), request.user),
            pk=evidence_id,
        )
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                purge_evidence(
                    actor=acting_user(request),
                    evidence=evidence,
                    reason=form.cleaned_data["reason"],
                    source=EventSource.ADMIN,
                )
                self.message_user(
                    request, "The file was destroyed; its tombstone is kept.", messages.SUCCESS
                )
                return self._back(evidence.cycle.obligation)
            except TransitionError as exc:
                self.message_user(request, str(exc), messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "evidence": evidence,
            "title": f"Purge {evidence}",
        }
        return TemplateResponse(request, "admin/obligations/obligation/purge.html", context)

    def my_work_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = london_today()
        sections = my_work(request.user, today)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "My work",
            "sections": sections,
            "today": today,
        }
        return TemplateResponse(request, "admin/obligations/obligation/my_work.html", context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obligation = self.get_object(request, unquote(object_id))
        extra: dict[str, Any] = dict(extra_context or {})
        if obligation is not None:
            cycle = obligation.current_cycle
            organisation = organisation_of(obligation)
            allowed = []
            if cycle is not None:
                for target, (sources, needs_reason) in TRANSITIONS.items():
                    if cycle.status in sources and may_transition(
                        request.user, organisation, target
                    ):
                        allowed.append(
                            {
                                "to": target,
                                "label": TRANSITION_LABELS[target],
                                "needs_reason": needs_reason,
                                # Say why now rather than offer a button that is then refused.
                                "refused": _refusal(request.user, cycle)
                                if target == CycleStatus.MET
                                else "",
                            }
                        )
            extra.update(
                cycle=cycle,
                badge=status_badge(obligation, london_today()),
                transitions=allowed,
                can_edit=self.has_change_permission(request, obligation),
                is_org_admin=has_role(request.user, (Role.ADMIN,), organisation),
                evidence=evidence_for(obligation),
                evidence_form=EvidenceForm(),
                max_upload=settings.EVIDENCE_MAX_BYTES,
                today=london_today(),
                **assessment_panel(obligation),
            )
        return super().change_view(request, object_id, form_url, extra)

    def start_assessment_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            # It writes: a GET (a link, an image in an e-mail) must never start an assessment.
            return HttpResponseNotAllowed(["POST"])
        obligation = self._editable_obligation(request, object_id)
        try:
            if obligation.current_cycle is None:
                raise AssessmentError("This obligation has no cycle.")
            assessment = start_assessment(
                actor=acting_user(request),
                cycle=obligation.current_cycle,
                source=EventSource.ADMIN,
            )
        except AssessmentError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return self._back(obligation)
        return HttpResponseRedirect(
            reverse("admin:obligations_riskassessment_change", args=[assessment.pk])
        )

    @admin.display(description="duty", ordering="duty__code")
    def duty_code(self, obj: Obligation) -> str:
        return obj.duty.code

    @admin.display(description="section", ordering="duty__section")
    def section(self, obj: Obligation) -> str:
        return obj.duty.section

    @admin.display(description="title")
    def duty_title(self, obj: Obligation) -> str:
        return obj.duty.title

    @admin.display(description="service", ordering="service__name")
    def service_or_provider(self, obj: Obligation) -> str:
        if obj.service_id is None:
            return f"{obj.provider} (all its services)"
        return str(obj.service)

    @admin.display(description="duty")
    def duty_summary(self, obj: Obligation) -> str:
        duty = obj.duty
        flag = (
            format_html("<p><strong>Unverified:</strong> {}</p>", duty.unverified_note)
            if not duty.verified
            else ""
        )
        return format_html(
            '<p><strong>{}</strong>: {} (<a href="{}" rel="noopener">{}</a>)</p><p>{}</p>'
            "<p>Evidence to keep: {}</p>{}",
            duty.code,
            duty.title,
            duty.source_url,
            duty.section,
            duty.summary,
            duty.evidence or "-",
            flag,
        )
