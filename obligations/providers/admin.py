"""Providers and services in the admin: the profile form, the preview of duties, notice
powers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from obligations.access.selectors import scope
from obligations.adminkit import (
    ReadOnlyInline,
    RegisterColumns,
    ScopedHistoryAdmin,
    acting_user,
    money_cell,
    yes_no_unknown,
)
from obligations.adminsearch import FilterChoicesAdmin, SearchableRelatedFilter
from obligations.assessments.admin_measures import measures_register_view
from obligations.catalogue.models import Feature
from obligations.catalogue.rules import Profile, applicable_duties, likely_categories, notice_powers
from obligations.catalogue.selectors import catalogue_parameters, loaded_catalogue, service_profile
from obligations.dates import display, london_today, validate_plausible_date
from obligations.providers.actions import record_significant_change, revenue_changed, save_service
from obligations.providers.models import (
    SERVICE_PROFILE_FIELDS,
    Provider,
    RevenuePeriod,
    Service,
    SignificantChange,
)
from obligations.providers.penalties import fees_requirements, money
from obligations.providers.selectors import (
    exposure_reasons,
    provider_penalty_cap,
    provider_revenue,
    providers_with_exposure,
)
from obligations.register.models import Obligation
from obligations.register.states import EventSource


class ObligationInline(RegisterColumns, ReadOnlyInline):
    model = Obligation
    fields = ("duty_code", "section", "title", "cycle_status", "due", "applicable_text", "owner")
    readonly_fields = fields
    verbose_name_plural = "obligations (the register for this service)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("duty", "owner")

    @admin.display(description="duty")
    def duty_code(self, obj: Obligation) -> str:
        return obj.duty.code

    @admin.display(description="section")
    def section(self, obj: Obligation) -> str:
        return obj.duty.section

    @admin.display(description="title")
    def title(self, obj: Obligation) -> str:
        return obj.duty.title

    @admin.display(description="applies")
    def applicable_text(self, obj: Obligation) -> str:
        return obj.why if obj.applicable else f"No longer applies: {obj.not_applicable_reason}"


class ProviderObligationInline(ObligationInline):
    """The provider's own obligations (fees), which belong to no single service."""

    fk_name = "provider"
    verbose_name_plural = "the provider's own obligations (for all its services)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).filter(service__isnull=True)


class RevenuePeriodInline(admin.TabularInline):
    model = RevenuePeriod
    extra = 0
    fields = ("kind", "start", "end", "amount_gbp", "basis", "complete", "uk_referable_gbp")
    verbose_name_plural = (
        "qualifying worldwide revenue: accounting periods set the penalty cap (Sch.13 para 4); "
        "a calendar year two years before a charging year decides fees (s.83)"
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return scope(super().get_queryset(request), request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Revenue is corrected in place (history keeps every figure), never deleted.
        return False


class ProviderChangeList(ChangeList):
    """Each listed provider carries its penalty cap, from the catalogue's figures read once."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        params = catalogue_parameters()
        for provider in self.result_list:
            provider.cap = provider_penalty_cap(provider, params)


@admin.register(Provider)
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
        return providers_with_exposure(super().get_queryset(request), london_today())

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ProviderChangeList

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj.cap = provider_penalty_cap(obj)
        return obj

    @admin.display(description="maximum penalty")
    def penalty_cap(self, obj: Any) -> str:
        if obj.cap.amount is None:
            return "Not computed: revenue not recorded"
        return f"{money(obj.cap.amount)} ({obj.cap.rule})"

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
        reasons = exposure_reasons(obj)
        if not reasons:
            return "Not at risk"
        return format_html('<strong style="color:#b91c1c">At risk</strong>: {}', "; ".join(reasons))

    @admin.display(description="fees (ss.83-84)")
    def fees_position(self, obj: Provider) -> str:
        if obj.pk is None:
            return "-"
        params = catalogue_parameters()["fees"]
        _, _, years = fees_requirements(provider_revenue(obj), london_today(), params)
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
        revenue_changed(
            actor=acting_user(request), provider=form.instance, source=EventSource.ADMIN
        )


class ServiceForm(forms.ModelForm):
    class Meta:
        model = Service
        fields: tuple[str, ...] = SERVICE_PROFILE_FIELDS
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
            self.fields["features"].queryset = Feature.objects.filter(  # type: ignore[attr-defined]
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
    model = SignificantChange
    fields = ("description", "planned_for", "status", "recorded_by", "recorded_at")
    readonly_fields = fields


class SignificantChangeForm(forms.Form):
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    planned_for = forms.DateField(help_text="DD/MM/YYYY", validators=[validate_plausible_date])

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


@admin.register(Service)
class ServiceAdmin(FilterChoicesAdmin, ScopedHistoryAdmin):
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
        # A platform's thousand providers are searched by name (adminsearch.py), not listed.
        ("provider", SearchableRelatedFilter),
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
    def kinds(self, obj: Service) -> str:
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
    def declared_categories(self, obj: Service) -> str:
        return ", ".join(c.code for c in obj.categories.all()) or "none"

    @admin.display(description="likely category (computed from the thresholds)")
    def likely_category(self, obj: Service) -> str:
        if obj.pk is None:
            return "Computed when saved."
        catalogue = loaded_catalogue()
        likely = likely_categories(catalogue, service_profile(obj))
        if not likely:
            return "None: the service meets no category's threshold conditions."
        return "; ".join(f"Category {code}: {why}" for code, why in likely)

    @admin.display(description="notice powers")
    def ofcom_powers(self, obj: Service) -> str:
        if obj.pk is None:
            return "Listed when saved."
        powers = notice_powers(loaded_catalogue(), service_profile(obj))
        return powers_list(powers)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        pass  # saved with its register categories and features in save_related, by save_service

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # The one write of a service's profile: it saves only what changed, then brings the
        # register in line with the profile.
        result = save_service(
            actor=acting_user(request),
            service=form.instance,
            source=EventSource.ADMIN,
            categories=form.cleaned_data["categories"],
            features=form.cleaned_data["features"],
        )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)
        changes = [
            (heading, codes)
            for heading, codes in (
                ("new", result.created),
                ("apply again", result.reapplied),
                ("no longer apply", result.not_applicable),
            )
            if codes
        ]
        if changes:
            self.message_user(
                request,
                "Register updated. "
                + " ".join(
                    f"{len(codes)} {heading}: {result.named(codes)}." for heading, codes in changes
                ),
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
        return measures_register_view(self, request, object_id)

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """What applies to a service before it exists: nothing is saved."""
        if not self.has_view_permission(request):
            raise Http404
        form = ProfilePreviewForm(request.POST or None)
        duties, likely, powers = None, None, None
        if request.method == "POST" and form.is_valid():
            catalogue = loaded_catalogue()
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
            record_significant_change(
                actor=acting_user(request),
                service=service,
                source=EventSource.ADMIN,
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
