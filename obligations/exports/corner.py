"""The auditor's corner: one admin page with everything an auditor comes for, so that
nobody types a URL. Exports of the register (CSV, XLSX, JSON, with filters and `as_of`), a
signed audit pack for a service or a provider, the public key and a form that verifies a
pack, and the calendar feeds. Every link goes to the API or admin page that does the work,
under the same tenancy rules; the page itself only reads and verifies."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from obligations.access.selectors import scope, visible_organisations
from obligations.exports.pack_verify import VerifyResult, verify
from obligations.exports.signing import public_key_pem
from obligations.providers.models import Provider, Service
from obligations.register.states import CycleStatus


class VerifyForm(forms.Form):
    pack = forms.FileField(label="Audit pack (.zip)")


def auditors_corner(request: HttpRequest) -> HttpResponse:
    result: VerifyResult | None = None
    form = VerifyForm()
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
        "services": scope(Service.objects.select_related("provider"), request.user).order_by(
            "provider__name", "name"
        ),
        "providers": scope(Provider.objects.all(), request.user).order_by("name"),
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
        "statuses": CycleStatus.choices,
        "public_key": key,
        "form": form,
        "result": result,
    }
    return TemplateResponse(request, "admin/obligations/auditors_corner.html", context)
