"""Ofcom's notices in the admin: stages through the notice writes, their events and
obligations."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from obligations.adminkit import ScopedHistoryAdmin, acting_user, form_errors_text
from obligations.dates import london_today, validate_plausible_date
from obligations.notices.actions import (
    NoticeError,
    change_notice,
    move_technology_notice,
    record_notice,
)
from obligations.notices.models import (
    NoticeEvent,
    NoticeEventKind,
    NoticeStage,
    OfcomNotice,
    TechnologyNotice,
)
from obligations.notices.stages import ENDED_STAGES, NOTICE_STAGES
from obligations.providers.admin import ObligationInline
from obligations.providers.penalties import money
from obligations.providers.selectors import penalty_above_cap, provider_penalty_cap
from obligations.register.states import EventSource


class NoticeEventInline(admin.TabularInline):
    """Read-only; the parent notice is already scoped to the user's organisation."""

    model = NoticeEvent
    extra = 0
    can_delete = False
    fields = ("on", "kind", "from_stage", "to_stage", "note", "changes", "actor", "source", "at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NoticeObligationInline(ObligationInline):
    verbose_name_plural = "obligations this notice creates"

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        self.fk_name = "technology_notice" if isinstance(obj, TechnologyNotice) else "ofcom_notice"
        return super().get_formset(request, obj, **kwargs)


class NoticeStageForm(forms.Form):
    to = forms.ChoiceField(choices=NoticeStage.choices)
    on = forms.DateField(help_text="DD/MM/YYYY", validators=[validate_plausible_date])
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class NoticeDatedEventForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            (k.value, k.label)
            for k in (
                NoticeEventKind.VARIED,
                NoticeEventKind.REVIEWED,
                NoticeEventKind.FURTHER_NOTICE,
                NoticeEventKind.APPEAL_LODGED,
                NoticeEventKind.APPEAL_DECIDED,
            )
        ]
    )
    on = forms.DateField(help_text="DD/MM/YYYY", validators=[validate_plausible_date])
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class NoticeAdmin(ScopedHistoryAdmin):
    """Notices are recorded and changed through the services, so every change is an event
    and the notice's obligations follow its dates."""

    inlines = [NoticeObligationInline, NoticeEventInline]

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        return list(self.inlines) if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            record_notice(actor=acting_user(request), notice=obj, source="admin")
            return
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if changes:
            change_notice(
                actor=acting_user(request),
                notice=type(obj).objects.get(pk=obj.pk),
                changes=changes,
                source=EventSource.ADMIN,
            )


@admin.register(TechnologyNotice)
class TechnologyNoticeAdmin(NoticeAdmin):
    list_display = (
        "__str__",
        "stage",
        "representations_due",
        "compliance_by",
        "runs_until",
    )
    list_filter = ("stage", ("service", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("service",)
    search_fields = ("ofcom_reference", "service__name")
    readonly_fields = ("stage", "closed_reason", "limits")
    fieldsets = (
        (None, {"fields": ("service", "ofcom_reference", "stage", "closed_reason", "limits")}),
        (
            "What the notice covers and requires (s.121, s.125)",
            {
                "fields": (
                    "terrorism_public",
                    "csea_public",
                    "csea_private",
                    "requirement",
                    "accredited_technology",
                )
            },
        ),
        (
            "Dates",
            {
                "fields": (
                    "skilled_report_on",
                    "warning_given_on",
                    "representations_due",
                    "representations_submitted_on",
                    "given_on",
                    "appeal_by",
                    "compliance_by",
                    "runs_until",
                    "report_by",
                )
            },
        ),
    )
    change_form_template = "admin/obligations/technologynotice/change_form.html"

    @admin.display(description="limits in the Act")
    def limits(self, obj: TechnologyNotice) -> str:
        return (
            "Terrorism content is covered only where communicated publicly; CSEA content "
            "publicly or privately (s.121). The requirements may run for up to 36 months from "
            "the last day of the compliance period (s.125(7)). The period for an appeal to the "
            "Upper Tribunal (s.168) is not in our reference: unverified, take it from the notice."
        )

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/stage/",
                view(self.stage_view),
                name="obligations_technologynotice_stage",
            ),
            path(
                "<path:object_id>/dated-event/",
                view(self.dated_event_view),
                name="obligations_technologynotice_event",
            ),
            *super().get_urls(),
        ]

    def _editable(self, request: HttpRequest, object_id: str) -> TechnologyNotice:
        if request.method != "POST":
            raise PermissionDenied
        notice = self.get_object(request, unquote(object_id))
        if notice is None:
            raise Http404("No such notice.")
        if not self.has_change_permission(request, notice):
            raise PermissionDenied
        return notice

    def _back(self, notice: TechnologyNotice) -> HttpResponse:
        return HttpResponseRedirect(
            reverse("admin:obligations_technologynotice_change", args=[notice.pk])
        )

    def _refuse(self, request: HttpRequest, form: forms.Form) -> None:
        self.message_user(request, f"Nothing recorded: {form_errors_text(form)}", messages.ERROR)

    def stage_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        notice = self._editable(request, object_id)
        form = NoticeStageForm(request.POST)
        if not form.is_valid():
            self._refuse(request, form)
            return self._back(notice)
        try:
            notice = move_technology_notice(
                actor=acting_user(request),
                notice=notice,
                to=form.cleaned_data["to"],
                on=form.cleaned_data["on"],
                reason=form.cleaned_data["reason"],
                source=EventSource.ADMIN,
            )
            self.message_user(request, f"Now: {notice.get_stage_display()}.", messages.SUCCESS)
        except NoticeError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        return self._back(notice)

    def dated_event_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        notice = self._editable(request, object_id)
        form = NoticeDatedEventForm(request.POST)
        if not form.is_valid():
            self._refuse(request, form)
            return self._back(notice)
        change_notice(
            actor=acting_user(request),
            notice=notice,
            changes={},
            kind=form.cleaned_data["kind"],
            on=form.cleaned_data["on"],
            note=form.cleaned_data["note"],
            source=EventSource.ADMIN,
        )
        self.message_user(request, "Recorded. Change the dates it moves below.", messages.SUCCESS)
        return self._back(notice)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        notice = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if notice is not None:
            extra.update(
                next_stages=[
                    (to, NoticeStage(to).label, to in ENDED_STAGES)
                    for to, sources in NOTICE_STAGES.items()
                    if notice.stage in sources
                ],
                can_edit=self.has_change_permission(request, notice),
                event_form=NoticeDatedEventForm(),
                today=london_today(),
            )
        return super().change_view(request, object_id, form_url, extra)


@admin.register(OfcomNotice)
class OfcomNoticeAdmin(NoticeAdmin):
    list_display = ("__str__", "kind", "given_on", "respond_by", "closed_on")
    list_filter = ("kind", ("service", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("service",)
    search_fields = ("ofcom_reference", "service__name")
    fields = (
        "service",
        "kind",
        "ofcom_reference",
        "given_on",
        "respond_by",
        "publish_by",
        "steps_required",
        "steps_by",
        "requires_caa",
        "caa_by",
        "single_penalty_gbp",
        "daily_penalty_gbp",
        "pay_by",
        "penalty_check",
        "closed_on",
        "closed_reason",
    )
    readonly_fields = ("penalty_check",)

    @admin.display(description="penalty against the cap")
    def penalty_check(self, obj: OfcomNotice) -> str:
        if obj.pk is None or not (obj.single_penalty_gbp or obj.daily_penalty_gbp):
            return "-"
        above = penalty_above_cap(obj)
        if above:
            return format_html(
                '<strong style="color:#b91c1c">Flagged</strong>: {} Ofcom\'s figure stands; '
                "check the revenue recorded and decide whether to appeal (s.168).",
                above,
            )
        cap = provider_penalty_cap(obj.service.provider)
        if cap.amount is None:
            return f"Cannot be checked: {cap.missing}"
        return f"Within the computed cap of {money(cap.amount)} ({cap.rule})."
