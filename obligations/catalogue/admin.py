"""The catalogue in the admin: read-only, with what is in force on which day."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from obligations.adminkit import ReadOnlyAdmin
from obligations.catalogue.commencement import in_force, in_force_q
from obligations.catalogue.models import (
    CatalogueVersion,
    Duty,
    Exemption,
    Feature,
    RegisterCategory,
)
from obligations.catalogue.selectors import duty_entry
from obligations.dates import london_today


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
        now = in_force_q(london_today())
        if self.value() == "yes":
            return queryset.filter(now)
        if self.value() == "no":
            return queryset.exclude(now)
        return queryset


@admin.register(Duty)
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
    def section_link(self, obj: Duty) -> str:
        return format_html('<a href="{}" rel="noopener">{}</a>', obj.source_url, obj.section)

    @admin.display(description="in force")
    def in_force_text(self, obj: Duty) -> str:
        return in_force(duty_entry(obj), london_today()).text

    @admin.display(description="commencement")
    def commencement_text(self, obj: Duty) -> str:
        cited = obj.commencement
        return format_html(
            '{} <a href="{}" rel="noopener">{}</a><br>{}',
            cited.get("instrument") or "No commencing instrument.",
            cited.get("url", ""),
            "read it",
            cited.get("note", ""),
        )

    @admin.display(description="verified", boolean=False)
    def verified_flag(self, obj: Duty) -> str:
        return "Yes" if obj.verified else "UNVERIFIED"

    @admin.display(description="Source check")
    def unverified_warning(self, obj: Duty) -> str:
        if obj.verified:
            return "Checked against the Act's text."
        return format_html("<strong>Unverified:</strong> {}", obj.unverified_note)


@admin.register(Feature)
class FeatureAdmin(CatalogueAdmin):
    list_display = ("code", "label", "description", "retired_at")


@admin.register(RegisterCategory)
class RegisterCategoryAdmin(CatalogueAdmin):
    list_display = ("code", "label", "threshold", "source")


@admin.register(Exemption)
class ExemptionAdmin(CatalogueAdmin):
    list_display = ("code", "label", "paragraph", "verified", "unverified_note")


@admin.register(CatalogueVersion)
class CatalogueVersionAdmin(CatalogueAdmin):
    list_display = ("version", "published", "loaded_at", "sha256")
