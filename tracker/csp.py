"""A strict Content Security Policy on every response (Django 5.2 has none built in).

Scripts only from our own origin, never inline; styles from our own files or a <style>
element carrying this request's nonce (`request.csp_nonce`); nothing may frame the pages.
The admin and the browsable API put styles in attributes, so under
`settings.CSP_INLINE_STYLE_PREFIXES` inline styles are allowed (scripts still are not).
A view that sets its own policy (an evidence download) keeps it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

HEADER = "Content-Security-Policy"
COMMON = (
    "default-src 'self'; script-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def policy(request: HttpRequest, nonce: str) -> str:
    if request.path.startswith(settings.CSP_INLINE_STYLE_PREFIXES):
        # A nonce would make browsers ignore 'unsafe-inline', so these pages get none.
        return f"{COMMON}; style-src 'self' 'unsafe-inline'"
    return f"{COMMON}; style-src 'self' 'nonce-{nonce}'"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = policy(request, nonce)
        return response
