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
    assert {f"{reverse('auditors-corner')}#exports", "/api/v1/audit-packs/"} <= form_targets(page)
    assert all(f'name="export" value="{kind}"' in page for kind in ("xlsx", "csv", "json"))
    assert "BEGIN PUBLIC KEY" in page
    assert reverse("admin:obligations_calendarfeed_changelist") in page
    assert "Northwind" in page and "Theirs" not in page


def test_the_export_form_as_sent_unchanged_gives_the_whole_register(auditor):
    """The form's empty fields (every service, today; no status ticked sends none) are what
    a browser sends."""
    corner = reverse("auditors-corner")
    response = auditor["client"].get(
        corner, {"export": "xlsx", "service": "", "as_of": ""}, follow=True
    )
    assert response.redirect_chain == [("/api/v1/obligations/export/xlsx/?", 302)]
    assert response.status_code == 200, response.content[:300]
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)))["Obligations"]
    assert sheet.max_row > 1


def test_the_export_form_takes_a_uk_date_and_sends_the_api_its_own(auditor):
    service = auditor["service"].pk
    response = auditor["client"].get(
        reverse("auditors-corner"),
        {
            "export": "csv",
            "service": service,
            "status": ["not_started", "in_progress"],
            "as_of": "20/11/2026",
        },
        follow=True,
    )
    assert response.redirect_chain == [
        (
            f"/api/v1/obligations/export/csv/?status=not_started&status=in_progress"
            f"&service={service}&as_of=2026-11-20",
            302,
        )
    ]
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("11/20/2026", "Enter a date as DD/MM/YYYY."),
        ("25/12/2099", "The register&#x27;s past, not its future."),
        ("01/01/9999", "Enter a date from 1 Jan 1990 to 31 Dec 2100."),
    ],
)
def test_a_bad_export_day_is_said_beside_the_field_and_what_was_chosen_is_kept(
    auditor, as_of, message
):
    service = auditor["service"].pk
    page = auditor["client"].get(
        reverse("auditors-corner"),
        {"export": "xlsx", "service": service, "status": "in_progress", "as_of": as_of},
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert message in html and "Nothing was downloaded" in html
    assert f'value="{as_of}"' in html
    assert f'<option value="{service}" selected>' in html
    assert re.search(r'<input[^>]*value="in_progress"[^>]*checked', html)
    assert not re.search(r'<input[^>]*value="met"[^>]*checked', html)


def test_another_organisations_service_cannot_be_exported_from_the_corner(auditor):
    theirs = applied_service(name="Not yours")
    page = auditor["client"].get(
        reverse("auditors-corner"), {"export": "csv", "service": theirs.pk}
    )
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()


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
