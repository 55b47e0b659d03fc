"""The compliance staff's screens. Every queryset goes through selectors.scope."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Page, Paginator
from django.db import models
from django.db.models import Model, Q, QuerySet
from django.forms.models import BaseInlineFormSet
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
from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import smart_split, unescape_string_literal
from simple_history.admin import SimpleHistoryAdmin

from obligations import models as m
from obligations import penalties, selectors, services
from obligations.admin_import import ImportRegisterAdminMixin
from obligations.catalogue import (
    Profile,
    applicable_duties,
    likely_categories,
    notice_powers,
)
from obligations.commencement import in_force, in_force_on
from obligations.dashboard import queries as dashboard_queries
from obligations.dates import display, london_today, validate_plausible_date
from obligations.inputs import validate_single_line
from obligations.uploads import EvidenceRefused

STATUS_COLOURS = {
    m.CycleStatus.NOT_STARTED: "#6b7280",
    m.CycleStatus.IN_PROGRESS: "#1d4ed8",
    m.CycleStatus.READY_FOR_REVIEW: "#7c3aed",
    m.CycleStatus.SENT_BACK: "#b45309",
    m.CycleStatus.MET: "#15803d",
    m.CycleStatus.NOT_APPLICABLE: "#374151",
}


def acting_user(request: HttpRequest) -> User:
    """The admin only serves signed-in staff, so the actor is always a real user."""
    assert isinstance(request.user, User)
    return request.user


def form_errors_text(form: forms.Form) -> str:
    """A refused form's errors in one line, each under its field's label, for a message."""
    return "; ".join(
        f"{form.fields[name].label or name.replace('_', ' ').capitalize()}: {error}"
        if name in form.fields
        else str(error)
        for name, errors in form.errors.items()
        for error in errors
    )


def status_badge(obligation: m.Obligation, today: dt.date) -> str:
    """A coloured badge of the obligation's status that also says it in words (colour is never
    the only signal). From the obligation's copy of its cycle's status: no join per row."""
    if not obligation.status:
        return "-"
    effective = obligation.duty.effective_from
    if obligation.applicable and not in_force_on(effective, today):
        words = f"from {display(effective)}" if effective else "no date yet"
        return format_html(
            '<span style="background:#6b7280;color:#fff;padding:2px 6px;border-radius:3px;'
            'white-space:nowrap">Not yet in force ({})</span>',
            words,
        )
    status = m.CycleStatus(obligation.status)
    label, colour = status.label, STATUS_COLOURS[status]
    if m.is_overdue(status, obligation.due_date, today):
        label, colour = f"{label} · overdue", "#b91c1c"
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 6px;border-radius:3px;'
        'white-space:nowrap">{}</span>',
        colour,
        label,
    )


# Django 6 makes https the scheme a bare address gets; the register's links are https already.
HTTPS_URLS: dict[type[Any], dict[str, Any]] = {models.URLField: {"assume_scheme": "https"}}


class NotFoundAdmin(admin.ModelAdmin):
    """An object the user cannot see is a 404 on every page, never a redirect or a 403 that
    tells it apart from one that does not exist."""

    formfield_overrides = HTTPS_URLS

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> HttpResponse:
        raise Http404(f"No {opts.verbose_name} with ID {object_id!r}.")

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Django checks the delete permission before looking the object up; look first so that
        # another organisation's object is a 404 like every other page.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.opts.verbose_name} with ID {object_id!r}.")
        return super().delete_view(request, object_id, extra_context)


class ScopedAdmin(NotFoundAdmin):
    """Organisation scoping and role rights for every tenant-owned model."""

    editable_roles = (m.Role.ADMIN, m.Role.COMPLIANCE)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return selectors.scope(super().get_queryset(request), request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or selectors.has_role(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return selectors.can_edit(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if obj is None:
            return selectors.can_edit(request.user)
        return selectors.can_edit(request.user, selectors.organisation_of(obj))

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # the register keeps everything; see the not-applicable workflow

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.related_model
        if related in selectors.ORGANISATION_PATHS:
            kwargs["queryset"] = selectors.scope(
                related.objects.all(), request.user, self.editable_roles
            )
        elif related is get_user_model():
            kwargs["queryset"] = colleagues(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ScopedHistoryAdmin(ScopedAdmin, SimpleHistoryAdmin):
    """Field history, visible only for objects the user can see (simple-history falls back to
    the history table for objects it cannot find, which would leak another organisation's)."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # A form sent back unchanged is no change: no save, so no history row saying "changed".
        if change and not form.has_changed():
            return
        super().save_model(request, obj, form, change)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.opts.verbose_name} with ID {object_id!r}.")
        return super().history_view(request, object_id, extra_context)

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Simple-history saves a POSTed old version whatever SIMPLE_HISTORY_REVERT_DISABLED
        # says (it only hides the button), bypassing the services and the role checks.
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.opts.verbose_name} with ID {object_id!r}.")
        return super().history_form_view(request, object_id, version_id, extra_context)


def colleagues(request: HttpRequest) -> QuerySet[Any]:
    """Users who are members of the organisations the requester can see."""
    organisations = selectors.visible_organisations(request.user)
    members = m.Membership.objects.active().filter(organisation__in=organisations)
    return (
        get_user_model()
        .objects.filter(pk__in=members.values("user_id"), is_active=True)
        .order_by("username")
    )


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A related-object filter whose choices are the related rows the user may see: their
    organisations' providers and services, their colleagues, the catalogue's duties. Django's
    RelatedOnlyFieldListFilter asks for the distinct values of the whole changelist instead,
    a scan of every obligation for each filter (300 ms apiece at 100,000 on SQLite)."""

    # Models shown by their name (their __str__): choices read the name alone, not a model
    # instance per row (2,858 services took 30 to 40 ms on PostgreSQL).
    NAMED = (m.Organisation, m.Provider, m.Service)

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        related = field.remote_field.model
        ordering = self.field_admin_ordering(field, request, model_admin)
        if related is get_user_model():
            visible = colleagues(request)
        elif related in selectors.ORGANISATION_PATHS:
            visible = selectors.scope(related._default_manager.all(), request.user)
            if related in self.NAMED:
                ordered = visible.order_by(*ordering) if ordering else visible
                return list(ordered.values_list("pk", "name"))
        else:  # the catalogue, the same for everyone
            visible = related._default_manager.all()
        return field.get_choices(
            include_blank=False,
            limit_choices_to={"pk__in": visible.values("pk")},
            ordering=ordering,
        )


class ParentKnownFormSet(BaseInlineFormSet):
    """Each row knows its parent, the object of the page. The admin titles every row with
    its name, and the names of a cycle, an obligation and a significant change name their
    parent, which each row read again from the database."""

    def add_fields(self, form: Any, index: int | None) -> None:
        super().add_fields(form, index)
        setattr(form.instance, self.fk.name, self.instance)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True
    formset = ParentKnownFormSet

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser or selectors.has_role(request.user)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return selectors.scope(super().get_queryset(request), request.user)


class RegisterColumns:
    """The status and due columns of a list of obligations."""

    @admin.display(description="status", ordering="status")
    def cycle_status(self, obj: m.Obligation) -> str:
        return status_badge(obj, london_today())

    @admin.display(description="due", ordering="due_date")
    def due(self, obj: m.Obligation) -> Any:
        return obj.due_date


class ObligationInline(RegisterColumns, ReadOnlyInline):
    model = m.Obligation
    fields = ("duty_code", "section", "title", "cycle_status", "due", "applicable_text", "owner")
    readonly_fields = fields
    verbose_name_plural = "obligations (the register for this service)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("duty", "owner")

    @admin.display(description="duty")
    def duty_code(self, obj: m.Obligation) -> str:
        return obj.duty.code

    @admin.display(description="section")
    def section(self, obj: m.Obligation) -> str:
        return obj.duty.section

    @admin.display(description="title")
    def title(self, obj: m.Obligation) -> str:
        return obj.duty.title

    @admin.display(description="applies")
    def applicable_text(self, obj: m.Obligation) -> str:
        return obj.why if obj.applicable else f"No longer applies: {obj.not_applicable_reason}"


class ProviderObligationInline(ObligationInline):
    """The provider's own obligations (fees), which belong to no single service."""

    fk_name = "provider"
    verbose_name_plural = "the provider's own obligations (for all its services)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).filter(service__isnull=True)


# --- Organisations --------------------------------------------------------


class OrganisationAdminInline(admin.TabularInline):
    """Rows only the organisation's admins may see and change."""

    extra = 0
    formset = ParentKnownFormSet

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return selectors.scope(super().get_queryset(request), request.user, (m.Role.ADMIN,))

    def _is_org_admin(self, request: HttpRequest, obj: Any) -> bool:
        if request.user.is_superuser:
            return True
        # Django asks without an object too (when it reads the rows, which the queryset
        # scopes): then, whether the user administers any organisation.
        return selectors.has_role(request.user, (m.Role.ADMIN,), obj.pk if obj else None)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_org_admin(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_org_admin(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_org_admin(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_org_admin(request, obj)


def member_candidates(request: HttpRequest, organisation: m.Organisation | None) -> QuerySet[Any]:
    """Whom an admin may add to `organisation`: colleagues, its former members, and accounts
    an operator made that belong to no organisation yet; never the people of other
    organisations. Operators: anyone."""
    users = get_user_model().objects.filter(is_active=True).order_by("username")
    if request.user.is_superuser:
        return users
    return users.filter(
        Q(pk__in=colleagues(request).values("pk"))
        | Q(pk__in=m.Membership.objects.filter(organisation=organisation).values("user_id"))
        | (~Q(pk__in=m.Membership.objects.values("user_id")) & Q(is_superuser=False))
    )


class FixedValue(forms.Widget):
    """A value shown as text, on a row where it can no longer change."""

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> SafeString:
        # A form's datetimes come here already in local time (DateTimeField.prepare_value).
        return format_html("<p>{}</p>", formats.localize(value) if value else "-")


class MembershipForm(forms.ModelForm):  # type: ignore[type-arg]
    """One member's row. Who and until when are fixed once granted (a change of either is a
    new membership, so the record keeps both); the role can change, and "end" ends it."""

    user = forms.ModelChoiceField(queryset=get_user_model().objects.none())
    end = forms.BooleanField(
        required=False, label="end membership", help_text="Access ends on saving."
    )

    class Meta:
        model = m.Membership
        fields = ["role", "expires_at"]  # "user" and "end" are the form's own, never saved

    def __init__(self, *args: Any, candidates: QuerySet[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["user"].queryset = candidates  # type: ignore[attr-defined]
            self.fields["end"].disabled = True
        else:
            self.fields["user"] = forms.CharField(disabled=True, widget=FixedValue)
            self.initial["user"] = str(self.instance.user)
            self.fields["expires_at"] = forms.DateTimeField(
                disabled=True, required=False, widget=FixedValue
            )


class MembershipFormSet(ParentKnownFormSet):
    """Asks the services' own checks before anything is saved, so that a refusal is shown
    beside its row; OrganisationAdmin.save_memberships then makes each change through them."""

    candidates: QuerySet[Any]

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {**super().get_form_kwargs(index), "candidates": self.candidates}

    def clean(self) -> None:
        super().clean()
        changed = [f for f in self.forms if not f.errors and f.has_changed()]
        # The admins this one submission ends or demotes, judged together.
        leaving = {
            f.instance.pk
            for f in changed
            if f.instance.pk is not None
            and (f.cleaned_data.get("end") or f.cleaned_data["role"] != m.Role.ADMIN)
        }
        for form in changed:
            data = form.cleaned_data
            try:
                if form.instance.pk is None:
                    services.check_new_member(
                        organisation=self.instance,
                        user=data["user"],
                        role=data["role"],
                        expires_at=data.get("expires_at"),
                    )
                elif form.instance.pk in leaving:
                    new_admins = {
                        f.instance.pk for f in changed if f.cleaned_data["role"] == m.Role.ADMIN
                    }
                    if not new_admins - leaving:
                        services.check_keeps_an_admin(membership=form.instance, also=leaving)
            except ValidationError as exc:
                form.add_error(None, exc)


class MembershipInline(OrganisationAdminInline):
    """The organisation's open memberships (an expired one too, until an admin ends it);
    ended ones stay on record, in the history below. Never deleted."""

    model = m.Membership
    form = MembershipForm
    formset = MembershipFormSet
    fields = ("user", "role", "expires_at", "created_at", "end")
    readonly_fields = ("created_at",)
    can_delete = False
    verbose_name, verbose_name_plural = "member", "members"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rows = super().get_queryset(request).filter(ended_at__isnull=True)
        return rows.select_related("user").order_by("user__username")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["fields"] = MembershipForm.Meta.fields
        formset: Any = super().get_formset(request, obj, **kwargs)
        formset.candidates = member_candidates(request, obj)
        return formset

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a membership is ended, never deleted


class MembershipEventInline(OrganisationAdminInline):
    """Who gave whom which role, changed or ended it, and when: newest first, read-only."""

    model = m.MembershipEvent
    fields = ("at", "member", "kind", "from_role", "to_role", "actor")
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = "membership history"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return (
            super()
            .get_queryset(request)
            .select_related("membership__user", "membership__organisation", "actor")
        )

    @admin.display(description="member")
    def member(self, obj: m.MembershipEvent) -> Any:
        return obj.membership.user

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LeadTimeInline(OrganisationAdminInline):
    model = m.LeadTime
    fields = ("duty", "lead_days")
    autocomplete_fields = ("duty",)
    verbose_name_plural = "lead times for particular duties (instead of the organisation's)"


@admin.register(m.Organisation)
class OrganisationAdmin(ScopedAdmin):
    list_display = ("name", "reminder_lead_days", "created_at")
    search_fields = ("name",)
    fields = ("name", "reminder_lead_days")
    inlines = [MembershipInline, LeadTimeInline, MembershipEventInline]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "reminder_lead_days" in form.changed_data:
            services.reschedule_organisation(obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is m.Membership:
            self.save_memberships(request, formset)
            return
        super().save_formset(request, form, formset, change)
        if formset.model is m.LeadTime and formset.has_changed():
            services.reschedule_organisation(form.instance)

    def save_memberships(self, request: HttpRequest, formset: MembershipFormSet) -> None:
        """Each changed row through its service (add_member, change_role, end_membership),
        never the formset's own save: the services keep the rules and write the history."""
        actor = acting_user(request)
        # The admin's change message reads what formset.save() would have recorded.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        changed = [row for row in formset.forms if row.has_changed()]
        # Admins arrive before admins leave: a submission that hands the role over keeps one.
        changed.sort(
            key=lambda row: row.cleaned_data.get("end") or row.cleaned_data["role"] != m.Role.ADMIN
        )
        for row in changed:
            data, membership = row.cleaned_data, row.instance
            try:
                if membership.pk is None:
                    membership = services.add_member(
                        actor=actor,
                        organisation=formset.instance,
                        user=data["user"],
                        role=data["role"],
                        expires_at=data["expires_at"],
                    )
                    formset.new_objects.append(membership)
                elif data["end"]:
                    services.end_membership(actor=actor, membership=membership)
                    formset.changed_objects.append((membership, ["end"]))
                elif "role" in row.changed_data:
                    services.change_role(actor=actor, membership=membership, role=data["role"])
                    formset.changed_objects.append((membership, ["role"]))
            except (ValidationError, PermissionDenied) as exc:
                # Checked when the form was validated; only a change made meanwhile (another
                # admin's) lands here, and refuses this row alone.
                said = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
                who = data.get("user") or membership.user
                self.message_user(request, f"{who}: {' '.join(said)}", messages.ERROR)
        selectors.forget_roles(actor)  # the actor's own role may have changed just now

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if request.user.is_superuser:
            return True
        return selectors.has_role(request.user, (m.Role.ADMIN,), obj.pk if obj else None)


# --- Providers ------------------------------------------------------------


class RevenuePeriodInline(admin.TabularInline):
    model = m.RevenuePeriod
    extra = 0
    fields = ("kind", "start", "end", "amount_gbp", "basis", "complete", "uk_referable_gbp")
    verbose_name_plural = (
        "qualifying worldwide revenue: accounting periods set the penalty cap (Sch.13 para 4); "
        "a calendar year two years before a charging year decides fees (s.83)"
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return selectors.scope(super().get_queryset(request), request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Revenue is corrected in place (history keeps every figure), never deleted.
        return False


def money_cell(amount: Any) -> str:
    return penalties.money(amount) if amount is not None else "-"


class ProviderChangeList(ChangeList):
    """Each listed provider carries its penalty cap, from the catalogue's figures read once."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        params = selectors.catalogue_parameters()
        for provider in self.result_list:
            provider.cap = selectors.provider_penalty_cap(provider, params)


class SortKeysFirstPaginator(Paginator):
    """A page of a long list in one query, whose subquery picks the page's ids by the sort
    keys alone.

    Sorting the whole register for a page carried every listed column of every row through
    the joins and the sort; the subquery carries only the sort keys, and the page's rows are
    then read by primary key (a page at 100,000 obligations on PostgreSQL: 116 ms -> 51 ms).
    """

    object_list: QuerySet[Any]

    def page(self, number: int | str) -> Page:
        page = super().page(number)
        ids = cast("QuerySet[Any]", page.object_list).values("pk")
        page.object_list = self.object_list.filter(pk__in=ids)
        return page


class RegisterChangeList(ChangeList):
    """The obligations list, without the long text no column shows (the change form, which
    shares the admin's queryset, still loads it)."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        return super().get_queryset(request, exclude_parameters).defer(*selectors.LIST_DEFERRED)


@admin.register(m.Provider)
class ProviderAdmin(ScopedHistoryAdmin):
    list_display = ("name", "organisation", "penalty_cap", "exposure", "country")
    list_filter = (("organisation", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("organisation",)
    search_fields = ("name", "legal_name")
    inlines = [RevenuePeriodInline, ProviderObligationInline]
    fields = (
        "organisation",
        "name",
        "legal_name",
        "country",
        "no_accounting_period",
        "penalty_cap_detail",
        "exposure",
        "fees_position",
    )
    readonly_fields = ("penalty_cap_detail", "exposure", "fees_position")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return selectors.providers_with_exposure(super().get_queryset(request), london_today())

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ProviderChangeList

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj.cap = selectors.provider_penalty_cap(obj)
        return obj

    @admin.display(description="maximum penalty")
    def penalty_cap(self, obj: Any) -> str:
        if obj.cap.amount is None:
            return "Not computed: revenue not recorded"
        return f"{penalties.money(obj.cap.amount)} ({obj.cap.rule})"

    @admin.display(description="maximum penalty (Sch.13 para 4)")
    def penalty_cap_detail(self, obj: Any) -> str:
        cap = getattr(obj, "cap", None)
        if cap is None:
            return "Computed once the provider and its revenue are saved."
        if cap.amount is None:
            return format_html("<strong>{}</strong> {}", cap.explanation, cap.missing)
        return format_html(
            "<strong>{}</strong> ({}): {}", money_cell(cap.amount), cap.rule, cap.explanation
        )

    @admin.display(description="exposure")
    def exposure(self, obj: Any) -> str:
        if obj.pk is None:
            return "-"
        reasons = selectors.exposure_reasons(obj)
        if not reasons:
            return "Not at risk"
        return format_html('<strong style="color:#b91c1c">At risk</strong>: {}', "; ".join(reasons))

    @admin.display(description="fees (ss.83-84)")
    def fees_position(self, obj: m.Provider) -> str:
        if obj.pk is None:
            return "-"
        params = selectors.catalogue_parameters()["fees"]
        _, _, years = penalties.fees_requirements(
            selectors.provider_revenue(obj), london_today(), params
        )
        rows = format_html_join(
            "",
            "<li><strong>{}</strong>: {} Notify by {}; pay from {}.</li>",
            (
                (
                    y.label,
                    y.why,
                    display(y.notify_by),
                    display(y.pay_by),
                )
                for y in years
            ),
        )
        note = params.get("unverified_note", "")
        return format_html("<ul>{}</ul><p><em>Unverified:</em> {}</p>", rows, note)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # Revenue decides the fees obligations and whether a penalty is above the cap.
        services.revenue_changed(
            actor=acting_user(request), provider=form.instance, source=m.EventSource.ADMIN
        )


# --- Services -------------------------------------------------------------


def yes_no_unknown(unknown: str, yes: str = "Yes", no: str = "No") -> forms.NullBooleanSelect:
    """A select for a yes/no/unknown field that shows the stored value: Django's own
    NullBooleanSelect (values "true", "false", "unknown"), with the words of this field."""
    widget = forms.NullBooleanSelect()
    widget.choices = [("unknown", unknown), ("true", yes), ("false", no)]
    return widget


class ServiceForm(forms.ModelForm):
    class Meta:
        model = m.Service
        fields: tuple[str, ...] = m.SERVICE_PROFILE_FIELDS
        widgets = {
            "categories": forms.CheckboxSelectMultiple,
            "features": forms.CheckboxSelectMultiple,
            "children_likely_to_access": yes_no_unknown(
                "Unknown: no assessment recorded (treated as likely)", "Likely", "Not likely"
            ),
            "uk_significant_users": yes_no_unknown("Not assessed"),
            "uk_target_market": yes_no_unknown("Not assessed"),
            "uk_material_risk": yes_no_unknown("Not assessed"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "features" in self.fields:
            self.fields["features"].queryset = m.Feature.objects.filter(  # type: ignore[attr-defined]
                retired_at__isnull=True
            )


class ProfilePreviewForm(ServiceForm):
    """The service form without the provider: nothing is saved."""

    class Meta(ServiceForm.Meta):
        fields = tuple(  # type: ignore[assignment]
            f
            for f in ServiceForm.Meta.fields
            if f not in ("provider", "children_access_assessed_on")
        )

    def profile(self) -> Profile:
        data = self.cleaned_data
        exemption = data.get("exemption")
        return Profile(
            name=data["name"],
            user_to_user=data["user_to_user"],
            search=data["search"],
            provider_pornography=data["provider_pornography"],
            categories=frozenset(c.code for c in data["categories"]),
            uk_monthly_users=data["uk_monthly_users"],
            children_likely_to_access=data["children_likely_to_access"],
            features=frozenset(f.code for f in data["features"]),
            launch_date=data.get("launch_date"),
            exemption=exemption.code if exemption else None,
            uk_significant_users=data.get("uk_significant_users"),
            uk_target_market=data.get("uk_target_market"),
            uk_material_risk=data.get("uk_material_risk"),
        )


class SignificantChangeInline(ReadOnlyInline):
    model = m.SignificantChange
    fields = ("description", "planned_for", "status", "recorded_by", "recorded_at")
    readonly_fields = fields


class SignificantChangeForm(forms.Form):
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    planned_for = forms.DateField(help_text="YYYY-MM-DD", validators=[validate_plausible_date])

    def clean_planned_for(self) -> dt.date:
        day: dt.date = self.cleaned_data["planned_for"]
        if day <= london_today():
            raise forms.ValidationError("A planned change is in the future.")
        return day


def powers_list(powers: list[dict[str, Any]]) -> str:
    if not powers:
        return "None: the service is exempt or outside Part 3."
    return format_html(
        "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((power_html(p),) for p in powers))
    )


def power_html(power: dict[str, Any]) -> str:
    """One notice power: what it could require, notes for this service, the conditions the
    Act sets, and whether what it needs exists yet, each dated and sourced."""
    notes = format_html_join(
        "", "<p><strong>For this service:</strong> {}</p>", ((n,) for n in power["notes"])
    )
    conditions = format_html_join(
        "", "<li>{}: {}</li>", ((c["section"], c["text"]) for c in power["conditions"])
    )
    needs = format_html_join(
        "",
        '<li>{} ({}): <strong>{}</strong> (checked {}). {} <a href="{}">Source</a>.</li>',
        (
            (
                p["what"],
                p["section"],
                "published" if p["exists"] else "not published as far as the catalogue knows",
                p["checked_on"],
                p["note"],
                p["source_url"],
            )
            for p in power["prerequisites"]
        ),
    )
    return format_html(
        "<strong>{} ({})</strong>: {}{}{}{}",
        power["title"],
        power["section"],
        power["why"],
        notes,
        format_html("<p>On these conditions:</p><ul>{}</ul>", conditions) if conditions else "",
        format_html("<p>In place yet?</p><ul>{}</ul>", needs) if needs else "",
    )


@admin.register(m.Service)
class ServiceAdmin(ScopedHistoryAdmin):
    form = ServiceForm
    list_display = (
        "name",
        "provider",
        "kinds",
        "declared_categories",
        "uk_monthly_users",
        "children_likely_to_access",
    )
    list_filter = (
        ("provider", admin.RelatedOnlyFieldListFilter),
        "user_to_user",
        "search",
        "categories",
        "children_likely_to_access",
    )
    list_select_related = ("provider",)
    search_fields = ("name", "provider__name")
    readonly_fields = ("likely_category", "ofcom_powers")
    inlines = [ObligationInline, SignificantChangeInline]
    fieldsets = (
        (None, {"fields": ("provider", "name", "launch_date")}),
        ("Kind", {"fields": ("user_to_user", "search", "provider_pornography", "exemption")}),
        (
            "Links with the UK (s.4(5)-(6)): any one makes it regulated",
            {"fields": ("uk_significant_users", "uk_target_market", "uk_material_risk")},
        ),
        (
            "Size and register category",
            {"fields": ("uk_monthly_users", "categories", "likely_category")},
        ),
        ("Children", {"fields": ("children_likely_to_access", "children_access_assessed_on")}),
        ("Features", {"fields": ("features",)}),
        ("Ofcom's notice powers that could reach it", {"fields": ("ofcom_powers",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).prefetch_related("categories")

    @admin.display(description="kind")
    def kinds(self, obj: m.Service) -> str:
        parts = [
            label
            for flag, label in (
                ("user_to_user", "U2U"),
                ("search", "search"),
                ("provider_pornography", "Part 5"),
            )
            if getattr(obj, flag)
        ]
        return " + ".join(parts)

    @admin.display(description="categories")
    def declared_categories(self, obj: m.Service) -> str:
        return ", ".join(c.code for c in obj.categories.all()) or "none"

    @admin.display(description="likely category (computed from the thresholds)")
    def likely_category(self, obj: m.Service) -> str:
        if obj.pk is None:
            return "Computed when saved."
        catalogue = selectors.loaded_catalogue()
        likely = likely_categories(catalogue, selectors.service_profile(obj))
        if not likely:
            return "None: the service meets no category's threshold conditions."
        return "; ".join(f"Category {code}: {why}" for code, why in likely)

    @admin.display(description="notice powers")
    def ofcom_powers(self, obj: m.Service) -> str:
        if obj.pk is None:
            return "Listed when saved."
        powers = notice_powers(selectors.loaded_catalogue(), selectors.service_profile(obj))
        return powers_list(powers)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        pass  # saved with its register categories and features in save_related, by save_service

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # The one write of a service's profile: it saves only what changed, then brings the
        # register in line with the profile.
        result = services.save_service(
            actor=acting_user(request),
            service=form.instance,
            source=m.EventSource.ADMIN,
            categories=form.cleaned_data["categories"],
            features=form.cleaned_data["features"],
        )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)
        if result.created or result.reapplied or result.not_applicable:
            self.message_user(
                request,
                f"Register updated: {len(result.created)} new, {len(result.reapplied)} apply "
                f"again, {len(result.not_applicable)} no longer apply.",
            )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "applicability/",
                self.admin_site.admin_view(self.preview_view),
                name="obligations_service_preview",
            ),
            path(
                "<path:object_id>/measures/",
                self.admin_site.admin_view(self.measures_view),
                name="obligations_service_measures",
            ),
            path(
                "<path:object_id>/significant-change/",
                self.admin_site.admin_view(self.significant_change_view),
                name="obligations_service_change_plan",
            ),
            *super().get_urls(),
        ]

    def measures_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return admin_assessments.measures_register_view(self, request, object_id)

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """What applies to a service before it exists: nothing is saved."""
        if not self.has_view_permission(request):
            raise Http404
        form = ProfilePreviewForm(request.POST or None)
        duties, likely, powers = None, None, None
        if request.method == "POST" and form.is_valid():
            catalogue = selectors.loaded_catalogue()
            profile = form.profile()
            duties = applicable_duties(catalogue, profile, day=london_today())
            likely = likely_categories(catalogue, profile)
            powers = powers_list(notice_powers(catalogue, profile))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "What applies to my service?",
            "form": form,
            "duties": duties,
            "likely": likely,
            "powers": powers,
        }
        return TemplateResponse(request, "admin/obligations/service/preview.html", context)

    def significant_change_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        service = self.get_object(request, object_id)
        if service is None:
            raise Http404
        if not self.has_change_permission(request, service):
            raise Http404
        form = SignificantChangeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            services.record_significant_change(
                actor=acting_user(request),
                service=service,
                source=m.EventSource.ADMIN,
                **form.cleaned_data,
            )
            self.message_user(
                request,
                "Significant change recorded; the assessments it needs are due the day before.",
            )
            return HttpResponse(
                status=303,
                headers={
                    "Location": reverse("admin:obligations_service_change", args=[service.pk])
                },
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Plan a significant change to {service}",
            "form": form,
            "original": service,
        }
        return TemplateResponse(
            request, "admin/obligations/service/significant_change.html", context
        )


# --- The catalogue (read-only) --------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the system (a catalogue load, the reminder sweep): viewable by
    whoever has_module_permission lets in, changed by nobody here."""

    formfield_overrides = HTTPS_URLS

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CatalogueAdmin(ReadOnlyAdmin):
    """Catalogue entries change only by loading a catalogue version."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff


class InForceFilter(admin.SimpleListFilter):
    title = "in force today"
    parameter_name = "in_force"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "In force"), ("no", "Not yet in force")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = Q(effective_from__lte=london_today())
        if self.value() == "yes":
            return queryset.filter(now)
        if self.value() == "no":
            return queryset.exclude(now)
        return queryset


@admin.register(m.Duty)
class DutyAdmin(CatalogueAdmin):
    list_display = ("code", "section_link", "title", "in_force_text", "verified_flag", "retired_at")
    list_filter = (InForceFilter, "verified", "part")
    search_fields = ("code", "title", "section")
    readonly_fields = ("unverified_warning", "in_force_text", "commencement_text")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [
            "unverified_warning",
            "code",
            "title",
            "section",
            "part",
            "instrument",
            "summary",
            "in_force_text",
            "commencement_text",
            "applies",
            "deadline",
            "evidence",
            "source_url",
            "catalogue_version",
            "retired_at",
        ]

    @admin.display(description="section", ordering="section")
    def section_link(self, obj: m.Duty) -> str:
        return format_html('<a href="{}" rel="noopener">{}</a>', obj.source_url, obj.section)

    @admin.display(description="in force")
    def in_force_text(self, obj: m.Duty) -> str:
        return in_force(selectors.duty_entry(obj), london_today()).text

    @admin.display(description="commencement")
    def commencement_text(self, obj: m.Duty) -> str:
        cited = obj.commencement
        return format_html(
            '{} <a href="{}" rel="noopener">{}</a><br>{}',
            cited.get("instrument") or "No commencing instrument.",
            cited.get("url", ""),
            "read it",
            cited.get("note", ""),
        )

    @admin.display(description="verified", boolean=False)
    def verified_flag(self, obj: m.Duty) -> str:
        return "Yes" if obj.verified else "UNVERIFIED"

    @admin.display(description="Source check")
    def unverified_warning(self, obj: m.Duty) -> str:
        if obj.verified:
            return "Checked against the Act's text."
        return format_html("<strong>Unverified:</strong> {}", obj.unverified_note)


@admin.register(m.Feature)
class FeatureAdmin(CatalogueAdmin):
    list_display = ("code", "label", "description", "retired_at")


@admin.register(m.RegisterCategory)
class RegisterCategoryAdmin(CatalogueAdmin):
    list_display = ("code", "label", "threshold", "source")


@admin.register(m.Exemption)
class ExemptionAdmin(CatalogueAdmin):
    list_display = ("code", "label", "paragraph", "verified", "unverified_note")


@admin.register(m.CatalogueVersion)
class CatalogueVersionAdmin(CatalogueAdmin):
    list_display = ("version", "published", "loaded_at", "sha256")


# --- The register ---------------------------------------------------------


TRANSITION_LABELS: dict[str, str] = {
    m.CycleStatus.IN_PROGRESS: "Start work",
    m.CycleStatus.READY_FOR_REVIEW: "Submit for review",
    m.CycleStatus.MET: "Approve: met for this cycle",
    m.CycleStatus.SENT_BACK: "Send back",
    m.CycleStatus.NOT_APPLICABLE: "Mark not applicable",
}


class OverdueFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "due"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("overdue", "Overdue"),
            ("7", "Due in the next 7 days"),
            ("30", "Due in the next 30 days"),
            ("90", "Due in the next 90 days"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        today = london_today()
        if self.value() == "overdue":
            return queryset.filter(m.overdue(today))
        if self.value() in {"7", "30", "90"}:
            return queryset.filter(m.due_within(today, int(self.value() or 0)))
        return queryset


class StateFilter(admin.SimpleListFilter):
    """The dashboard's four states, so that a figure's link lists exactly what it counted."""

    title = "state (as on the dashboard)"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("met", "Met"),
            ("overdue", "Overdue"),
            ("in_progress", "In progress, on time"),
            ("not_started", "Not started, on time"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        today = london_today()
        wanted = dashboard_queries.buckets(today).get(value)
        if wanted is None:
            raise IncorrectLookupParameters(f"Unknown state {value!r}.")
        return queryset.filter(
            pk__in=selectors.register_state(queryset.model.objects.all())
            .filter(wanted & Q(r_applicable=True))
            .values("pk")
        )


class MyWorkFilter(admin.SimpleListFilter):
    """The sections of "My work", so that each lists all of its obligations here."""

    title = "my work"
    parameter_name = "mine"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        sections = selectors.my_work_filters(request.user, london_today())
        return [(key, title) for key, (title, _) in sections.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        section = selectors.my_work_filters(request.user, london_today()).get(value)
        if section is None:
            raise IncorrectLookupParameters(f"Unknown section of my work {value!r}.")
        return queryset.filter(section[1])


class CycleInline(ReadOnlyInline):
    model = m.ObligationCycle
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
    model = m.Event
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
        required=False, help_text="YYYY-MM-DD; optional", validators=[validate_plausible_date]
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
                services.transition_to(
                    actor=acting_user(request),
                    cycle=obligation.current_cycle,
                    to=target,
                    source=m.EventSource.BULK,
                )
                moved += 1
            except services.TransitionError as exc:
                refused.append(f"{obligation}: {exc}")
        if moved:
            modeladmin.message_user(request, f"{label}: {moved} obligation(s).", messages.SUCCESS)
        for line in refused:
            modeladmin.message_user(request, line, messages.ERROR)

    action.__name__ = f"bulk_{target}"
    return admin.action(description=f"{label} (selected obligations)")(action)


@admin.register(m.Obligation)
class ObligationAdmin(RegisterColumns, ImportRegisterAdminMixin, ScopedHistoryAdmin):
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
        ("provider__organisation", ScopedRelatedFilter),
        ("provider", ScopedRelatedFilter),
        ("service", ScopedRelatedFilter),
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
        _bulk(m.CycleStatus.IN_PROGRESS, "Start work"),
        _bulk(m.CycleStatus.READY_FOR_REVIEW, "Submit for review"),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return selectors.obligations_for_list(request.user)

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
        return selectors.search_related(queryset, self.get_search_fields(request), terms), False

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # obligations come from applying the catalogue to a service

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return super().get_actions(request) if selectors.can_edit(request.user) else {}

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Only the owner is editable here, and it changes through the service (with an event).
        if "owner" in form.changed_data:
            services.assign_owner(
                actor=acting_user(request),
                obligation=m.Obligation.objects.get(pk=obj.pk),
                owner=form.cleaned_data["owner"],
                source=m.EventSource.ADMIN,
            )

    @admin.action(description="Assign an owner (selected obligations)")
    def bulk_assign_owner(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        form = OwnerForm(request.POST if "apply" in request.POST else None)
        form.fields["owner"].queryset = colleagues(request)  # type: ignore[attr-defined]
        if form.is_bound and form.is_valid():
            for obligation in queryset.select_related("current_cycle", "owner"):
                services.assign_owner(
                    actor=acting_user(request),
                    obligation=obligation,
                    owner=form.cleaned_data["owner"],
                    source=m.EventSource.BULK,
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

    def _visible_obligation(self, request: HttpRequest, object_id: str) -> m.Obligation:
        obligation = self.get_object(request, unquote(object_id))
        if obligation is None:
            raise Http404("No such obligation.")
        return obligation

    def _editable_obligation(self, request: HttpRequest, object_id: str) -> m.Obligation:
        obligation = self._visible_obligation(request, object_id)
        if not self.has_change_permission(request, obligation):
            raise PermissionDenied
        return obligation

    def _back(self, obligation: m.Obligation) -> HttpResponse:
        return HttpResponseRedirect(
            reverse("admin:obligations_obligation_change", args=[obligation.pk])
        )

    def transition_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obligation = self._visible_obligation(request, object_id)
        target = request.POST.get("to", "")
        if not selectors.may_transition(
            request.user, selectors.organisation_of(obligation), target
        ):
            raise PermissionDenied
        form = ReasonForm(request.POST)
        form.is_valid()
        try:
            if obligation.current_cycle is None:
                raise services.TransitionError("This obligation has no open cycle.")
            cycle = services.transition_to(
                actor=acting_user(request),
                cycle=obligation.current_cycle,
                to=target,
                reason=form.cleaned_data.get("reason", ""),
                source=m.EventSource.ADMIN,
            )
            self.message_user(
                request, f"Now {cycle.get_status_display().lower()}.", messages.SUCCESS
            )
        except services.TransitionError as exc:
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
                    services.add_evidence_file(
                        actor=acting_user(request),
                        cycle=cycle,
                        uploaded=data["file"],
                        title=data["title"],
                        expires_on=data["expires_on"],
                        source=m.EventSource.ADMIN,
                    )
                else:
                    services.add_evidence_link(
                        actor=acting_user(request),
                        cycle=cycle,
                        url=data["url"],
                        title=data["title"],
                        expires_on=data["expires_on"],
                        source=m.EventSource.ADMIN,
                    )
                self.message_user(request, "Evidence added.", messages.SUCCESS)
            except (EvidenceRefused, ValidationError) as exc:
                message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
                self.message_user(request, f"Evidence not added: {message}", messages.ERROR)
        return self._back(obligation)

    def purge_view(self, request: HttpRequest, evidence_id: int) -> HttpResponse:
        evidence = get_object_or_404(
            selectors.scope(m.Evidence.objects.select_related("cycle__obligation"), request.user),
            pk=evidence_id,
        )
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.purge_evidence(
                    actor=acting_user(request),
                    evidence=evidence,
                    reason=form.cleaned_data["reason"],
                    source=m.EventSource.ADMIN,
                )
                self.message_user(
                    request, "The file was destroyed; its tombstone is kept.", messages.SUCCESS
                )
                return self._back(evidence.cycle.obligation)
            except services.TransitionError as exc:
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
        sections = selectors.my_work(request.user, today)
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
            organisation = selectors.organisation_of(obligation)
            allowed = []
            if cycle is not None:
                for target, (sources, needs_reason) in services.TRANSITIONS.items():
                    if cycle.status in sources and selectors.may_transition(
                        request.user, organisation, target
                    ):
                        allowed.append(
                            {
                                "to": target,
                                "label": TRANSITION_LABELS[target],
                                "needs_reason": needs_reason,
                            }
                        )
            extra.update(
                cycle=cycle,
                badge=status_badge(obligation, london_today()),
                transitions=allowed,
                can_edit=self.has_change_permission(request, obligation),
                is_org_admin=selectors.has_role(request.user, (m.Role.ADMIN,), organisation),
                evidence=selectors.evidence_for(obligation),
                evidence_form=EvidenceForm(),
                max_upload=settings.EVIDENCE_MAX_BYTES,
                today=london_today(),
                **admin_assessments.assessment_panel(obligation),
            )
        return super().change_view(request, object_id, form_url, extra)

    def start_assessment_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            # It writes: a GET (a link, an image in an e-mail) must never start an assessment.
            return HttpResponseNotAllowed(["POST"])
        obligation = self._editable_obligation(request, object_id)
        try:
            if obligation.current_cycle is None:
                raise services.AssessmentError("This obligation has no cycle.")
            assessment = services.start_assessment(
                actor=acting_user(request),
                cycle=obligation.current_cycle,
                source=m.EventSource.ADMIN,
            )
        except services.AssessmentError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return self._back(obligation)
        return HttpResponseRedirect(
            reverse("admin:obligations_riskassessment_change", args=[assessment.pk])
        )

    @admin.display(description="duty", ordering="duty__code")
    def duty_code(self, obj: m.Obligation) -> str:
        return obj.duty.code

    @admin.display(description="section", ordering="duty__section")
    def section(self, obj: m.Obligation) -> str:
        return obj.duty.section

    @admin.display(description="title")
    def duty_title(self, obj: m.Obligation) -> str:
        return obj.duty.title

    @admin.display(description="service", ordering="service__name")
    def service_or_provider(self, obj: m.Obligation) -> str:
        if obj.service_id is None:
            return f"{obj.provider} (all its services)"
        return str(obj.service)

    @admin.display(description="duty")
    def duty_summary(self, obj: m.Obligation) -> str:
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


# --- Colleagues (for owner autocomplete) ----------------------------------

admin.site.unregister(User)


@admin.register(User)
class ColleagueAdmin(UserAdmin):
    """Operators manage every account; members see only their colleagues, read-only,
    so that owner and reviewer pickers can autocomplete."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        if request.user.is_superuser:
            return super().get_queryset(request)
        return colleagues(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # People are deactivated, never deleted: events, field history and the access log
        # name them (on PostgreSQL the history tables refuse the update a deletion makes).
        return False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if request.user.is_superuser:
            return True
        return selectors.has_role(request.user)

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> HttpResponse:
        raise Http404(f"No {opts.verbose_name} with ID {object_id!r}.")


# --- Ofcom notices --------------------------------------------------------


class NoticeEventInline(admin.TabularInline):
    """Read-only; the parent notice is already scoped to the user's organisation."""

    model = m.NoticeEvent
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
        self.fk_name = (
            "technology_notice" if isinstance(obj, m.TechnologyNotice) else "ofcom_notice"
        )
        return super().get_formset(request, obj, **kwargs)


class NoticeStageForm(forms.Form):
    to = forms.ChoiceField(choices=m.NoticeStage.choices)
    on = forms.DateField(help_text="YYYY-MM-DD", validators=[validate_plausible_date])
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class NoticeDatedEventForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[
            (k.value, k.label)
            for k in (
                m.NoticeEventKind.VARIED,
                m.NoticeEventKind.REVIEWED,
                m.NoticeEventKind.FURTHER_NOTICE,
                m.NoticeEventKind.APPEAL_LODGED,
                m.NoticeEventKind.APPEAL_DECIDED,
            )
        ]
    )
    on = forms.DateField(help_text="YYYY-MM-DD", validators=[validate_plausible_date])
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class NoticeAdmin(ScopedHistoryAdmin):
    """Notices are recorded and changed through the services, so every change is an event
    and the notice's obligations follow its dates."""

    inlines = [NoticeObligationInline, NoticeEventInline]

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        return list(self.inlines) if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            services.record_notice(actor=acting_user(request), notice=obj, source="admin")
            return
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if changes:
            services.change_notice(
                actor=acting_user(request),
                notice=type(obj).objects.get(pk=obj.pk),
                changes=changes,
                source=m.EventSource.ADMIN,
            )


@admin.register(m.TechnologyNotice)
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
    def limits(self, obj: m.TechnologyNotice) -> str:
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

    def _editable(self, request: HttpRequest, object_id: str) -> m.TechnologyNotice:
        if request.method != "POST":
            raise PermissionDenied
        notice = self.get_object(request, unquote(object_id))
        if notice is None:
            raise Http404("No such notice.")
        if not self.has_change_permission(request, notice):
            raise PermissionDenied
        return notice

    def _back(self, notice: m.TechnologyNotice) -> HttpResponse:
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
            notice = services.move_technology_notice(
                actor=acting_user(request),
                notice=notice,
                to=form.cleaned_data["to"],
                on=form.cleaned_data["on"],
                reason=form.cleaned_data["reason"],
                source=m.EventSource.ADMIN,
            )
            self.message_user(request, f"Now: {notice.get_stage_display()}.", messages.SUCCESS)
        except services.NoticeError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        return self._back(notice)

    def dated_event_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        notice = self._editable(request, object_id)
        form = NoticeDatedEventForm(request.POST)
        if not form.is_valid():
            self._refuse(request, form)
            return self._back(notice)
        services.change_notice(
            actor=acting_user(request),
            notice=notice,
            changes={},
            kind=form.cleaned_data["kind"],
            on=form.cleaned_data["on"],
            note=form.cleaned_data["note"],
            source=m.EventSource.ADMIN,
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
                    (to, m.NoticeStage(to).label, to in services.ENDED_STAGES)
                    for to, sources in services.NOTICE_STAGES.items()
                    if notice.stage in sources
                ],
                can_edit=self.has_change_permission(request, notice),
                event_form=NoticeDatedEventForm(),
                today=london_today(),
            )
        return super().change_view(request, object_id, form_url, extra)


@admin.register(m.OfcomNotice)
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
    def penalty_check(self, obj: m.OfcomNotice) -> str:
        if obj.pk is None or not (obj.single_penalty_gbp or obj.daily_penalty_gbp):
            return "-"
        above = selectors.penalty_above_cap(obj)
        if above:
            return format_html(
                '<strong style="color:#b91c1c">Flagged</strong>: {} Ofcom\'s figure stands; '
                "check the revenue recorded and decide whether to appeal (s.168).",
                above,
            )
        cap = selectors.provider_penalty_cap(obj.service.provider)
        if cap.amount is None:
            return f"Cannot be checked: {cap.missing}"
        return f"Within the computed cap of {penalties.money(cap.amount)} ({cap.rule})."


# --- Notifications (the reminder outbox) ----------------------------------


@admin.register(m.Reminder)
class ReminderAdmin(ReadOnlyAdmin, NotFoundAdmin):
    """Each user's notifications; an organisation's managers and admins see every reminder
    sent in it, to whom, and why. Read-only: the sweep writes them."""

    list_display = ("created_at", "kind", "reason", "recipient", "status", "sent_at", "obligation")
    # When a reminder was made is a filter, not a date hierarchy: the hierarchy reads the
    # first and last dates and every day of all of a user's reminders on each page.
    list_filter = (
        "kind",
        "status",
        ("recipient", ScopedRelatedFilter),
        ("created_at", admin.DateFieldListFilter),
        ("deadline", admin.DateFieldListFilter),
    )
    list_select_related = ("recipient", "cycle__obligation__duty")
    search_fields = ("reason",)
    list_per_page = 100
    paginator = SortKeysFirstPaginator
    fields = ("created_at", "kind", "reason", "deadline", "recipient", "status", "sent_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return selectors.notifications_for(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or selectors.has_role(request.user)

    @admin.display(description="obligation")
    def obligation(self, obj: m.Reminder) -> str:
        obligation_id = obj.cycle.obligation_id
        url = reverse("admin:obligations_obligation_change", args=[obligation_id])
        return format_html('<a href="{}">{}</a>', url, obj.cycle.obligation.duty.code)


# Screens kept in their own modules build on the classes above: risk assessments and Codes
# measures; API tokens; calendar feeds.
from obligations import admin_access, admin_api, admin_assessments, admin_feeds  # noqa: E402,F401
