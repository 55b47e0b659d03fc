"""Password reset by e-mail under the admin: Django's views and the admin's templates, with
each request throttled and on record (passwords.py). Django's behaviour is kept: the same page
whether or not the address has an account, and no mail to an account without a usable
password (single sign-on users)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.http import HttpRequest
from django.urls import path

from obligations.access.passwords import allow_reset_request, set_password_by_reset


class ThrottledPasswordResetForm(PasswordResetForm):
    def save(self, **kwargs: Any) -> None:  # type: ignore[override]
        # PasswordResetView passes everything by keyword, the request among them.
        if not allow_reset_request(email=self.cleaned_data["email"], request=kwargs["request"]):
            return
        # The link names SITE_URL's host, never the request's Host header.
        site = urlsplit(settings.SITE_URL)
        super().save(
            **kwargs | {"domain_override": site.netloc, "use_https": site.scheme == "https"}
        )


class RecordedSetPasswordForm(SetPasswordForm):  # type: ignore[type-arg]
    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def save(self, commit: bool = True) -> Any:
        set_password_by_reset(
            user=self.user, password=self.cleaned_data["new_password1"], request=self.request
        )
        return self.user


class AdminLook:
    """The admin's header and title on pages served outside admin.site."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)  # type: ignore[misc]
        return context | {
            "site_header": admin.site.site_header,
            "site_title": admin.site.site_title,
        }


class ResetView(AdminLook, auth_views.PasswordResetView):
    form_class = ThrottledPasswordResetForm


class ResetConfirmView(AdminLook, auth_views.PasswordResetConfirmView):
    form_class = RecordedSetPasswordForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


class ResetDoneView(AdminLook, auth_views.PasswordResetDoneView):
    pass


class ResetCompleteView(AdminLook, auth_views.PasswordResetCompleteView):
    pass


# Under admin/ (tracker/urls.py, before the admin's own). The admin shows "Forgotten your
# password?" once `admin_password_reset` exists; the other names are the ones Django's views
# and the e-mail's template reverse.
urlpatterns = [
    path("password_reset/", ResetView.as_view(), name="admin_password_reset"),
    path("password_reset/done/", ResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", ResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", ResetCompleteView.as_view(), name="password_reset_complete"),
]
