"""Organisations and their members in the admin: memberships through the access writes,
lead times, colleagues."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import formats
from django.utils.html import format_html
from django.utils.safestring import SafeString

from obligations.access.actions import (
    add_member,
    change_role,
    check_keeps_an_admin,
    check_new_member,
    end_membership,
)
from obligations.access.admin_sso import SsoGroupRoleInline
from obligations.access.models import Membership, MembershipEvent, Organisation, Role
from obligations.access.selectors import forget_roles, has_role
from obligations.adminkit import (
    OrganisationAdminInline,
    ParentKnownFormSet,
    ScopedAdmin,
    acting_user,
    colleagues,
)
from obligations.reminders.actions import reschedule_organisation
from obligations.reminders.models import LeadTime


def member_candidates(request: HttpRequest, organisation: Organisation | None) -> QuerySet[Any]:
    """Whom an admin may add to `organisation`: colleagues, its former members, and accounts
    an operator made that belong to no organisation yet; never the people of other
    organisations. Operators: anyone."""
    users = get_user_model().objects.filter(is_active=True).order_by("username")
    if request.user.is_superuser:
        return users
    return users.filter(
        Q(pk__in=colleagues(request).values("pk"))
        | Q(pk__in=Membership.objects.filter(organisation=organisation).values("user_id"))
        | (~Q(pk__in=Membership.objects.values("user_id")) & Q(is_superuser=False))
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
        model = Membership
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
            and (f.cleaned_data.get("end") or f.cleaned_data["role"] != Role.ADMIN)
        }
        for form in changed:
            data = form.cleaned_data
            try:
                if form.instance.pk is None:
                    check_new_member(
                        organisation=self.instance,
                        user=data["user"],
                        role=data["role"],
                        expires_at=data.get("expires_at"),
                    )
                elif form.instance.pk in leaving:
                    new_admins = {
                        f.instance.pk for f in changed if f.cleaned_data["role"] == Role.ADMIN
                    }
                    if not new_admins - leaving:
                        check_keeps_an_admin(membership=form.instance, also=leaving)
            except ValidationError as exc:
                form.add_error(None, exc)


class MembershipInline(OrganisationAdminInline):
    """The organisation's open memberships (an expired one too, until an admin ends it);
    ended ones stay on record, in the history below. Never deleted."""

    model = Membership
    form = MembershipForm
    formset = MembershipFormSet
    fields = ("user", "role", "expires_at", "created_at", "via_sso", "end")
    readonly_fields = ("created_at", "via_sso")
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

    model = MembershipEvent
    fields = ("at", "member", "kind", "from_role", "to_role", "actor", "description")
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
    def member(self, obj: MembershipEvent) -> Any:
        return obj.membership.user

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LeadTimeInline(OrganisationAdminInline):
    model = LeadTime
    fields = ("duty", "lead_days")
    autocomplete_fields = ("duty",)
    verbose_name_plural = "lead times for particular duties (instead of the organisation's)"


@admin.register(Organisation)
class OrganisationAdmin(ScopedAdmin):
    list_display = ("name", "reminder_lead_days", "created_at")
    search_fields = ("name",)
    fields = ("name", "reminder_lead_days")
    inlines = [MembershipInline, LeadTimeInline, SsoGroupRoleInline, MembershipEventInline]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "reminder_lead_days" in form.changed_data:
            reschedule_organisation(obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Membership:
            self.save_memberships(request, formset)
            return
        super().save_formset(request, form, formset, change)
        if formset.model is LeadTime and formset.has_changed():
            reschedule_organisation(form.instance)

    def save_memberships(self, request: HttpRequest, formset: MembershipFormSet) -> None:
        """Each changed row through its service (add_member, change_role, end_membership),
        never the formset's own save: the services keep the rules and write the history."""
        actor = acting_user(request)
        # The admin's change message reads what formset.save() would have recorded.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        changed = [row for row in formset.forms if row.has_changed()]
        # Admins arrive before admins leave: a submission that hands the role over keeps one.
        changed.sort(
            key=lambda row: row.cleaned_data.get("end") or row.cleaned_data["role"] != Role.ADMIN
        )
        for row in changed:
            data, membership = row.cleaned_data, row.instance
            try:
                if membership.pk is None:
                    membership = add_member(
                        actor=actor,
                        organisation=formset.instance,
                        user=data["user"],
                        role=data["role"],
                        expires_at=data["expires_at"],
                    )
                    formset.new_objects.append(membership)
                elif data["end"]:
                    end_membership(actor=actor, membership=membership)
                    formset.changed_objects.append((membership, ["end"]))
                elif "role" in row.changed_data:
                    change_role(actor=actor, membership=membership, role=data["role"])
                    formset.changed_objects.append((membership, ["role"]))
            except (ValidationError, PermissionDenied) as exc:
                # Checked when the form was validated; only a change made meanwhile (another
                # admin's) lands here, and refuses this row alone.
                said = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
                who = data.get("user") or membership.user
                self.message_user(request, f"{who}: {' '.join(said)}", messages.ERROR)
        forget_roles(actor)  # the actor's own role may have changed just now

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if request.user.is_superuser:
            return True
        return has_role(request.user, (Role.ADMIN,), obj.pk if obj else None)


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
        return has_role(request.user)

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> HttpResponse:
        raise Http404(f"No {opts.verbose_name} with ID {object_id!r}.")
