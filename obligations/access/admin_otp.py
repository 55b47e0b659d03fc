"""Two-factor in the admin: each user's enrolment page, and the middleware that keeps those who
must have a device (OTP_REQUIRED_FOR_ADMINS) on it until they do."""

from __future__ import annotations

from base64 import b32encode
from binascii import unhexlify
from collections.abc import Callable

import django_otp
import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django_otp.plugins.otp_totp.models import TOTPDevice

from obligations.access.otp import (
    confirmed_device,
    enrol,
    must_have_device,
    new_secret,
    provisioning_uri,
    remove_device,
    session_is_verified,
)
from obligations.adminkit import ReadOnlyAdmin, acting_user

# The secret offered until the user confirms it: in their session, so that looking at the
# page writes no device, and a page left unconfirmed leaves nothing behind.
PENDING_KEY = "otp_pending_key"


class EnrolForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def qr_svg(data: str) -> SafeString:
    """`data` as an inline SVG QR code: no image file, no script (the CSP allows neither)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    svg = image.to_string(encoding="unicode")
    # Our own drawing of our own URI; the XML declaration has no place inside HTML.
    return mark_safe(svg[svg.index("<svg") :])


def two_factor(request: HttpRequest) -> HttpResponse:
    """Show the user's authenticator secret (as an otpauth:// URI, its text and a QR code) and
    confirm it with the app's current code; once confirmed, the device is theirs and this
    session is verified."""
    user = acting_user(request)
    context = {
        **admin.site.each_context(request),
        "title": "Two-factor sign-in",
        "device": confirmed_device(user),
        "required": must_have_device(user),
    }
    if context["device"] is not None:
        return TemplateResponse(request, "admin/obligations/two_factor.html", context)
    key = request.session.get(PENDING_KEY) or new_secret()
    request.session[PENDING_KEY] = key
    form = EnrolForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            device = enrol(actor=user, key=key, code=form.cleaned_data["code"], request=request)
        except ValidationError as exc:
            form.add_error(None, exc)  # its errors name the field, where it has one
        else:
            django_otp.login(request, device)
            del request.session[PENDING_KEY]
            messages.success(request, "Two-factor sign-in is on: sign-ins now ask for a code.")
            return redirect("admin:index")
    uri = provisioning_uri(user, key)
    context |= {
        "form": form,
        "uri": uri,
        "secret": b32encode(unhexlify(key)).decode(),
        "qr": qr_svg(uri),
    }
    return TemplateResponse(request, "admin/obligations/two_factor.html", context)


class TwoFactorRequiredMiddleware:
    """With OTP_REQUIRED_FOR_ADMINS, a signed-in operator or organisation admin whose session
    passed no second factor (otp.session_is_verified) reaches only the enrolment page and
    sign-out; one who has a device signs in again, with its code. API calls with a token
    carry no session user here (DRF authenticates them in the view), so they are unaffected."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.OTP_REQUIRED_FOR_ADMINS
            and request.user.is_authenticated
            and request.path not in (reverse("admin_two_factor"), reverse("admin:logout"))
            and must_have_device(request.user)
            and not session_is_verified(request)
        ):
            if confirmed_device(request.user) is not None:
                logout(request)
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            return redirect("admin_two_factor")
        return self.get_response(request)


# django-otp's own admin shows each device's secret as a QR code; ours lists devices and lets
# an operator remove one (a lost phone), after which its user enrols again.
admin.site.unregister(TOTPDevice)


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(ReadOnlyAdmin):
    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_select_related = ("user",)
    search_fields = ("user__username",)
    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields = fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser

    def delete_model(self, request: HttpRequest, obj: TOTPDevice) -> None:
        remove_device(actor=acting_user(request), device=obj, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TOTPDevice]) -> None:
        for device in queryset.select_related("user"):
            remove_device(actor=acting_user(request), device=device, request=request)
