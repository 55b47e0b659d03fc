"""The auditor's corner: from the admin's own links to an export with filters, a signed pack
for a service, and that pack verified, without typing a URL."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from obligations.access.models import Role
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member
from tests.helpers import signed_in_client


@pytest.fixture
def auditor(catalogue):  # type: ignore[no-untyped-def]
    org = OrganisationFactory(name="Audited")
    service = applied_service(provider=ProviderFactory(organisation=org, name="Northwind"))
    applied_service(provider=ProviderFactory(organisation=OrganisationFactory(), name="Theirs"))
    return {"client": signed_in_client(member(org, role=Role.AUDITOR)), "service": service}


def form_targets(page: str) -> set[str]:
    return set(re.findall(r'(?:action|formaction)="([^"]+)"', page))


def test_every_page_of_the_admin_links_to_the_corner(auditor):
    home = auditor["client"].get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("auditors-corner")}"' in home


def test_the_corner_offers_exports_packs_the_key_and_feeds_for_the_auditors_own_data(auditor):
    page = auditor["client"].get(reverse("auditors-corner")).content.decode()
    assert {
        "/api/v1/obligations/export/xlsx/",
        "/api/v1/obligations/export/csv/",
        "/api/v1/obligations/export/json/",
        "/api/v1/audit-packs/",
    } <= form_targets(page)
    assert "BEGIN PUBLIC KEY" in page
    assert reverse("admin:obligations_calendarfeed_changelist") in page
    assert "Northwind" in page and "Theirs" not in page


def test_the_export_form_as_sent_unchanged_gives_the_whole_register(auditor):
    """The form's empty fields (every service, today; no status ticked sends none) are what
    a browser sends."""
    response = auditor["client"].get(
        "/api/v1/obligations/export/xlsx/", {"service": "", "as_of": ""}
    )
    assert response.status_code == 200, response.content[:300]
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)))["Obligations"]
    assert sheet.max_row > 1
    filtered = auditor["client"].get(
        "/api/v1/obligations/export/csv/",
        {"service": auditor["service"].pk, "status": ["not_started", "in_progress"], "as_of": ""},
    )
    assert filtered.status_code == 200


def test_a_pack_downloaded_from_the_corner_verifies_there(auditor):
    client = auditor["client"]
    pack = client.get("/api/v1/audit-packs/", {"service": auditor["service"].pk})
    assert pack.status_code == 200
    body = b"".join(pack.streaming_content)
    upload = SimpleUploadedFile("pack.zip", body, content_type="application/zip")
    page = client.post(reverse("auditors-corner"), {"pack": upload}).content.decode()
    assert "Valid: the signature is the tracker's, and " in page

    middle = len(body) // 2  # one byte changed in the archive
    tampered = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
    upload = SimpleUploadedFile("pack.zip", tampered, content_type="application/zip")
    page = client.post(reverse("auditors-corner"), {"pack": upload}).content.decode()
    assert 'id="verify-result">Not valid:' in page


def test_verifying_something_that_is_not_a_pack_says_so(auditor):
    upload = SimpleUploadedFile("notes.zip", b"not a zip", content_type="application/zip")
    page = auditor["client"].post(reverse("auditors-corner"), {"pack": upload}).content.decode()
    assert "Not valid: Not a ZIP file, or a damaged one" in page
