"""Evidence that proves itself: hashed as it streams in, refused before anything is stored,
served only through an authorised download, expiring, versioned, and purged to a tombstone."""

import datetime as dt
import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from obligations.access.models import Role
from obligations.register.evidence import add_evidence_file, add_evidence_link
from obligations.register.models import Event, Evidence
from obligations.register.states import EventKind, EventSource
from obligations.register.workflow import current_evidence
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member

PDF = b"%PDF-1.4\n" + b"risk assessment body " * 500 + b"\n%%EOF\n"


@pytest.fixture
def setup(catalogue):  # type: ignore[no-untyped-def]
    org, other_org = OrganisationFactory(name="Ours"), OrganisationFactory(name="Theirs")
    service = applied_service(provider=ProviderFactory(organisation=org))
    other = applied_service(provider=ProviderFactory(organisation=other_org))
    obligation = service.obligations.get(duty__code="U2U-ILLEGAL-RA")
    return {
        "org": org,
        "user": member(org, username="casey"),
        "admin": member(org, role=Role.ADMIN, username="ada"),
        "outsider": member(other_org, username="eve"),
        "obligation": obligation,
        "cycle": obligation.current_cycle,
        "other_cycle": other.obligations.get(duty__code="U2U-ILLEGAL-RA").current_cycle,
    }


def upload(client, obligation, name="ra.pdf", content=PDF, **extra):  # type: ignore[no-untyped-def]
    url = reverse("admin:obligations_obligation_evidence", args=[obligation.pk])
    data = {"title": "Illegal content RA", "file": SimpleUploadedFile(name, content), **extra}
    return client.post(url, data, follow=True)


def stored_files(root):  # type: ignore[no-untyped-def]
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_an_upload_through_the_admin_is_hashed_and_downloadable(client, setup, evidence_storage):
    client.force_login(setup["user"])
    response = upload(client, setup["obligation"])
    assert "Evidence added." in response.content.decode()
    evidence = Evidence.objects.get()
    assert evidence.sha256 == hashlib.sha256(PDF).hexdigest()
    assert (evidence.size, evidence.content_type) == (len(PDF), "application/pdf")
    assert (evidence.uploaded_by, evidence.original_name) == (setup["user"], "ra.pdf")
    event = Event.objects.get(kind=EventKind.EVIDENCE_ADDED)
    assert (event.evidence, event.actor, event.source) == (
        evidence,
        setup["user"],
        EventSource.ADMIN,
    )
    # Stored under its hash, outside any public URL, and served only by the download view.
    assert [p.name for p in stored_files(evidence_storage)] == [evidence.sha256]
    download = client.get(reverse("evidence-download", args=[evidence.pk]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF
    assert download["Content-Disposition"].startswith("attachment;")
    assert download["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download["Content-Security-Policy"]
    assert download["X-Evidence-SHA256"] == evidence.sha256


def test_another_organisations_evidence_is_a_404_and_anonymous_must_sign_in(client, setup):
    theirs = add_evidence_file(
        actor=setup["outsider"],
        cycle=setup["other_cycle"],
        uploaded=SimpleUploadedFile("x.pdf", PDF),
        title="Theirs",
        source=EventSource.ADMIN,
    )
    url = reverse("evidence-download", args=[theirs.pk])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(setup["user"])
    assert client.get(url).status_code == 404
    purge = reverse("admin:obligations_evidence_purge", args=[theirs.pk])
    assert client.get(purge).status_code == 404


def test_an_oversized_upload_is_refused_and_nothing_is_stored(
    client, setup, settings, evidence_storage
):
    settings.EVIDENCE_MAX_BYTES = 1024
    client.force_login(setup["user"])
    response = upload(client, setup["obligation"])
    assert response.status_code == 200
    assert "larger than the 1,024-byte limit; nothing was stored" in response.content.decode()
    assert not Evidence.objects.exists()
    assert stored_files(evidence_storage) == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "page.html",
            b"<script>alert(1)</script>",
            ".html files are not accepted as evidence (accepted: CSV, Excel",
        ),
        ("tool.exe", b"MZ\x90\x00", ".exe files are not accepted"),
        ("fake.pdf", b"MZ\x90\x00 not a pdf", "named as PDF but its content is not"),
        ("empty.pdf", b"", "Give either a file or a link"),
    ],
)
def test_a_forbidden_upload_is_a_clear_error_with_nothing_stored(
    client, setup, evidence_storage, name, content, message
):
    client.force_login(setup["user"])
    response = upload(client, setup["obligation"], name=name, content=content)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Evidence.objects.exists()
    assert not Event.objects.filter(kind=EventKind.EVIDENCE_ADDED).exists()
    assert stored_files(evidence_storage) == []


def test_a_link_must_be_http_or_https(setup):
    with pytest.raises(ValidationError):
        add_evidence_link(
            actor=setup["user"],
            cycle=setup["cycle"],
            url="javascript:alert(1)",
            title="x",
            source=EventSource.ADMIN,
        )
    link = add_evidence_link(
        actor=setup["user"],
        cycle=setup["cycle"],
        url="https://example.test/policy",
        title="Terms of service",
        source=EventSource.ADMIN,
    )
    assert list(current_evidence(setup["cycle"])) == [link]


def test_expired_evidence_stops_counting(setup, clock):
    evidence = add_evidence_link(
        actor=setup["user"],
        cycle=setup["cycle"],
        url="https://example.test/ra",
        title="RA",
        expires_on=TODAY + dt.timedelta(days=1),
        source=EventSource.ADMIN,
    )
    assert list(current_evidence(setup["cycle"])) == [evidence]
    clock.shift(dt.timedelta(days=1))
    assert list(current_evidence(setup["cycle"])) == [evidence]  # last day counts
    clock.shift(dt.timedelta(days=1))
    assert list(current_evidence(setup["cycle"])) == []


def test_a_new_version_keeps_the_old(setup):
    first = add_evidence_file(
        actor=setup["user"],
        cycle=setup["cycle"],
        uploaded=SimpleUploadedFile("ra.pdf", PDF),
        title="RA v1",
        source=EventSource.ADMIN,
    )
    second_bytes = PDF + b"v2"
    second = add_evidence_file(
        actor=setup["user"],
        cycle=setup["cycle"],
        uploaded=SimpleUploadedFile("ra.pdf", second_bytes),
        title="RA v2",
        supersedes=first,
        source=EventSource.ADMIN,
    )
    first.refresh_from_db()
    assert first.file.read() == PDF and second.file.read() == second_bytes
    assert list(current_evidence(setup["cycle"])) == [second]


def test_a_purge_destroys_the_file_and_keeps_a_tombstone(
    client, setup, evidence_storage, django_capture_on_commit_callbacks
):
    evidence = add_evidence_file(
        actor=setup["user"],
        cycle=setup["cycle"],
        uploaded=SimpleUploadedFile("report.pdf", PDF),
        title="Takedown record",
        source=EventSource.ADMIN,
    )
    url = reverse("admin:obligations_evidence_purge", args=[evidence.pk])
    # A compliance member may not purge; the file stays.
    client.force_login(setup["user"])
    refused = client.post(url, {"reason": "illegal"})
    assert "Only an organisation admin" in refused.content.decode()
    assert len(stored_files(evidence_storage)) == 1
    client.force_login(setup["admin"])
    assert "A purge needs a reason" in client.post(url, {"reason": " "}).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"reason": "Contained CSEA: reported to NCA"})
    assert done.status_code == 302
    evidence.refresh_from_db()
    assert evidence.purged_at is not None and not evidence.file
    assert (evidence.purged_by, evidence.purge_reason) == (
        setup["admin"],
        "Contained CSEA: reported to NCA",
    )
    assert evidence.sha256 == hashlib.sha256(PDF).hexdigest()
    assert evidence.uploaded_by == setup["user"]
    assert stored_files(evidence_storage) == []
    event = Event.objects.get(kind=EventKind.EVIDENCE_PURGED)
    assert (event.actor, event.evidence) == (setup["admin"], evidence)
    gone = client.get(reverse("evidence-download", args=[evidence.pk]))
    assert gone.status_code == 410 and evidence.sha256 in gone.content.decode()
