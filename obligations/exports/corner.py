"""The auditor's corner: one admin page with everything an auditor comes for, so that
nobody types a URL. Exports of the register (CSV, XLSX, JSON, with filters and `as_of`), a
signed audit pack for a service or a provider, the public key and a form that verifies a
pack, and the calendar feeds. Every link goes to the API or admin page that does the work,
under the same tenancy rules; the page itself only reads and verifies."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from obligations.access.selectors import scope, visible_organisations
from obligations.dates import DAY_INPUT, london_today, validate_plausible_date
from obligations.exports.pack_verify import VerifyResult, verify
from obligations.exports.signing import public_key_pem
from obligations.providers.models import Provider, Service
from obligations.register.states import CycleStatus


class VerifyForm(forms.Form):
    pack = forms.FileField(label="Audit pack (.zip)")


class ServiceChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.provider.name}: {obj.name}"


class ExportForm(forms.Form):
    """The register export as a person asks for it (a day typed DD/MM/YYYY); sent on to the
    API's export, which takes YYYY-MM-DD, once it is valid."""

    export = forms.ChoiceField(choices=[(k, k.upper()) for k in ("xlsx", "csv", "json")])
    service = ServiceChoice(
        queryset=Service.objects.none(),
        required=False,
        empty_label="Every service",
        widget=forms.Select(attrs={"id": "export-service"}),
    )
    status = forms.MultipleChoiceField(
        choices=CycleStatus.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    as_of = forms.DateField(
        label="As it stood on",
        required=False,
        validators=[validate_plausible_date],
        widget=forms.TextInput(
            attrs={
                "id": "export-as-of",
                "placeholder": DAY_INPUT,
                "size": 10,
                "inputmode": "numeric",
            }
        ),
        error_messages={"invalid": f"Enter a date as {DAY_INPUT}."},
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = scope(  # type: ignore[attr-defined]
            Service.objects.select_related("provider"), user
        ).order_by("provider__name", "name")

    def clean_as_of(self) -> Any:
        day = self.cleaned_data["as_of"]
        if day is not None and day > london_today():
            raise forms.ValidationError("The register's past, not its future.")
        return day

    def api_url(self) -> str:
        data = self.cleaned_data
        query: dict[str, Any] = {"status": data["status"]}
        if data["service"] is not None:
            query["service"] = data["service"].pk
        if data["as_of"] is not None:
            query["as_of"] = data["as_of"].isoformat()
        url = reverse("api:obligation-export", kwargs={"kind": data["export"]})
        return f"{url}?{urlencode(query, doseq=True)}"


def auditors_corner(request: HttpRequest) -> HttpResponse:
    result: VerifyResult | None = None
    form = VerifyForm()
    asked = "export" in request.GET
    export_form = ExportForm(request.GET if asked else None, user=request.user)
    if asked and export_form.is_valid():
        return HttpResponseRedirect(export_form.api_url())
    if request.method == "POST":
        form = VerifyForm(request.POST, request.FILES)
        if getattr(request, "evidence_too_large", False):
            form.add_error(
                "pack",
                f"Packs over {settings.EVIDENCE_MAX_BYTES // (1024 * 1024)} MB are verified "
                "with `manage.py verify_audit_pack`.",
            )
        elif form.is_valid():
            result = verify(form.cleaned_data["pack"])
    try:
        key = public_key_pem()
    except ImproperlyConfigured as exc:
        key = f"(no signing key: {exc})"
    context = {
        **admin.site.each_context(request),
        "title": "Auditor's corner",
        "services": export_form.fields["service"].queryset,  # type: ignore[attr-defined]
        "providers": scope(Provider.objects.all(), request.user).order_by("name"),
        "export_form": export_form,
        "board_choices": [
            (
                "organisation",
                "Organisation",
                visible_organisations(request.user).order_by("name").values_list("pk", "name"),
            ),
            (
                "provider",
                "Provider",
                scope(Provider.objects.all(), request.user)
                .order_by("name")
                .values_list("pk", "name"),
            ),
        ],
        "public_key": key,
        "form": form,
        "result": result,
    }
    return TemplateResponse(request, "admin/obligations/auditors_corner.html", context)
