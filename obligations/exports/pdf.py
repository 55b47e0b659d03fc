"""PDFs made on the server from our own templates, with WeasyPrint.

A PDF is a page rendered for print (A4, page numbers, who made it and when, in the footer
each template draws) and turned into a file here. Rendering never reaches the network: the
URL fetcher serves our own static files and refuses every other address, so a link someone
typed into a name or a note cannot make the server fetch it. Fonts come from the machine
(fontconfig), never from a URL.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

PDF = "application/pdf"
# The one address the rendering may ask for: a page's own origin. Relative links resolve
# against it, so a static file's URL is this plus STATIC_URL.
BASE_URL = "http://pdf.invalid/"


class StaticOnlyFetcher(URLFetcher):
    """Serves files under STATIC_URL from the static finders; refuses anything else."""

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        parts = urlsplit(url)
        static = urlsplit(BASE_URL + settings.STATIC_URL.lstrip("/")).path
        if f"{parts.scheme}://{parts.netloc}/" != BASE_URL or not parts.path.startswith(static):
            raise ValueError(f"PDFs fetch only the tracker's own static files, not {url}")
        relative = unquote(parts.path.removeprefix(static))
        # No way out of the static folders ("..", an absolute path).
        inside = posixpath.normpath(relative) == relative and not relative.startswith(("/", ".."))
        found = finders.find(relative) if inside else None
        if not isinstance(found, str):
            raise ValueError(f"No static file {parts.path}")
        with open(found, "rb") as handle:
            return URLFetcherResponse(url, handle.read())


def render_pdf(template: str, context: dict[str, Any], request: HttpRequest) -> bytes:
    html = render_to_string(template, {**context, "pdf": True}, request=request)
    document = HTML(string=html, base_url=BASE_URL, url_fetcher=StaticOnlyFetcher())
    return bytes(document.write_pdf())


def pdf_filename(*parts: object) -> str:
    """A file name from words and numbers, names people typed included: letters, digits and
    hyphens only, so no quote, slash or line break reaches the header."""
    # Each part cut on its own, so a long name never pushes the date off the end.
    words = [slugify(str(part))[:60].strip("-") for part in parts]
    return "-".join(word for word in words if word) + ".pdf"


def pdf_response(pdf: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(pdf, content_type=PDF)
    response["Content-Disposition"] = content_disposition_header(True, filename) or ""
    response["X-Content-Type-Options"] = "nosniff"
    return response
