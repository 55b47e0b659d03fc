"""Evidence in an S3 bucket (a real S3 API: moto's server on loopback) behaves as on disk:
stored under its hash with the exact bytes, served only through the authorised views, purged
to a tombstone, checked against its upload hash in audit packs; never given a bucket URL."""

import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from storages.backends.s3 import S3Storage

from obligations.access.models import Role
from obligations.exports.auditpack import write_pack
from obligations.exports.pack_verify import verify
from obligations.exports.signing import public_key_pem
from obligations.register.evidence import add_evidence_file, purge_evidence
from obligations.register.models import Evidence, Obligation
from obligations.register.states import EventSource
from tests import servers
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member
from tests.helpers import client_for, private_pem
from tracker.env import Env
from tracker.storage import evidence_s3_storage

PDF = b"%PDF-1.4\n" + b"children's risk assessment " * 400 + b"\n%%EOF\n"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """One moto server for the session; each test keeps to its own key prefix."""
    with servers.s3() as env:
        yield env


@pytest.fixture
def bucket(s3_server, settings, monkeypatch, evidence_storage):  # type: ignore[no-untyped-def]
    """The default storage switched to the bucket, configured from the environment as the
    settings module does; yields a boto3 client and the test's key prefix."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, s3_server[name])
    # Assigning STORAGES resets Django's cached backends and default_storage.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": evidence_s3_storage(Env({**s3_server, "EVIDENCE_S3_PREFIX": prefix})),
    }
    # The model's field holds default_storage, a lazy object: it follows the switch.
    assert isinstance(Evidence._meta.get_field("file").storage, S3Storage)
    yield servers.s3_client(s3_server), prefix
    # Nothing fell back to local disk on the way.
    assert not evidence_storage.exists()


@pytest.fixture(autouse=True)
def no_bucket_urls(monkeypatch):  # type: ignore[no-untyped-def]
    """A bucket URL handed out, signed or not, would bypass the authorised views."""

    def refuse(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("evidence must never be given a bucket URL")

    monkeypatch.setattr(S3Storage, "url", refuse)


@pytest.fixture
def setup(catalogue, settings):  # type: ignore[no-untyped-def]
    settings.AUDIT_PACK_SIGNING_KEY = private_pem(Ed25519PrivateKey.generate())
    settings.AUDIT_PACK_SIGNING_KEY_FILE = ""
    org = OrganisationFactory(name="Ours")
    service = applied_service(provider=ProviderFactory(organisation=org))
    applied_service(provider=ProviderFactory(organisation=OrganisationFactory(name="Theirs")))
    obligation = service.obligations.get(duty__code="U2U-ILLEGAL-RA")
    return {
        "service": service,
        "obligation": obligation,
        "user": member(org, username="casey"),
        "admin": member(org, role=Role.ADMIN, username="ada"),
        "outsider": member(OrganisationFactory(name="Elsewhere"), username="eve"),
    }


def objects(bucket) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Every object under the test's prefix, read straight from the bucket."""
    client, prefix = bucket
    listed = client.list_objects_v2(Bucket=servers.S3_BUCKET, Prefix=f"{prefix}/")
    return {
        item["Key"]: client.get_object(Bucket=servers.S3_BUCKET, Key=item["Key"])["Body"].read()
        for item in listed.get("Contents", [])
    }


def stored_key(bucket, evidence: Evidence) -> str:  # type: ignore[no-untyped-def]
    return f"{bucket[1]}/{evidence.file.name}"


def add_pdf(setup, content: bytes = PDF) -> Evidence:  # type: ignore[no-untyped-def]
    return add_evidence_file(
        actor=setup["user"],
        cycle=setup["obligation"].current_cycle,
        uploaded=SimpleUploadedFile("ra.pdf", content),
        title="Illegal content RA",
        source=EventSource.ADMIN,
    )


def build_pack(service) -> tuple[bytes, Any]:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    summary = write_pack(
        obligations=Obligation.objects.filter(service=service),
        title=f"Service: {service}",
        today=TODAY,
        out=out,
    )
    return out.getvalue(), summary


def pack_row(pack: bytes, evidence: Evidence) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(pack)) as zf:
        rows = json.loads(zf.read("evidence/index.json"))["evidence"]
    return next(row for row in rows if row["id"] == evidence.pk)


def test_an_admin_upload_lands_in_the_bucket_and_only_the_authorised_views_serve_it(
    client, setup, bucket, s3_server
):
    client.force_login(setup["user"])
    url = reverse("admin:obligations_obligation_evidence", args=[setup["obligation"].pk])
    response = client.post(
        url, {"title": "RA", "file": SimpleUploadedFile("ra.pdf", PDF)}, follow=True
    )
    assert "Evidence added." in response.content.decode()
    evidence = Evidence.objects.get()
    assert evidence.sha256 == hashlib.sha256(PDF).hexdigest()
    key = f"{bucket[1]}/evidence/{evidence.sha256[:2]}/{evidence.sha256}"
    assert objects(bucket) == {key: PDF}
    # Private: the owner's grant and nothing else (no AllUsers, no AuthenticatedUsers).
    acl = bucket[0].get_object_acl(Bucket=servers.S3_BUCKET, Key=key)
    assert [grant["Permission"] for grant in acl["Grants"]] == ["FULL_CONTROL"]
    assert acl["Grants"][0]["Grantee"]["Type"] == "CanonicalUser"

    for download in (
        client.get(reverse("evidence-download", args=[evidence.pk])),
        client_for(setup["user"]).get(reverse("api:evidence-download", kwargs={"pk": evidence.pk})),
    ):
        # Streamed through the tracker, never a redirect to the bucket.
        assert download.status_code == 200 and not download.has_header("Location")
        assert b"".join(download.streaming_content) == PDF
        assert download["Content-Length"] == str(len(PDF))
        assert download["X-Evidence-SHA256"] == evidence.sha256
        assert download["Content-Disposition"].startswith("attachment;")
    listing = client_for(setup["user"]).get(reverse("api:evidence-detail", args=[evidence.pk]))
    assert listing.json()["download_url"].endswith(
        reverse("api:evidence-download", kwargs={"pk": evidence.pk})
    )
    assert s3_server["EVIDENCE_S3_ENDPOINT_URL"] not in listing.content.decode()

    client.force_login(setup["outsider"])
    assert client.get(reverse("evidence-download", args=[evidence.pk])).status_code == 404
    assert (
        client_for(setup["outsider"])
        .get(reverse("api:evidence-download", kwargs={"pk": evidence.pk}))
        .status_code
        == 404
    )


def test_the_same_file_twice_keeps_two_objects(setup, bucket):
    first, second = add_pdf(setup), add_pdf(setup)
    assert first.file.name != second.file.name
    assert objects(bucket) == {stored_key(bucket, first): PDF, stored_key(bucket, second): PDF}


def test_a_purge_deletes_the_object_and_keeps_the_tombstone(
    client, setup, bucket, django_capture_on_commit_callbacks
):
    evidence = add_pdf(setup)
    assert list(objects(bucket)) == [stored_key(bucket, evidence)]
    with django_capture_on_commit_callbacks(execute=True):
        purge_evidence(
            actor=setup["admin"], evidence=evidence, reason="Retention ended", source="admin"
        )
    assert objects(bucket) == {}
    evidence.refresh_from_db()
    assert not evidence.file and evidence.sha256 == hashlib.sha256(PDF).hexdigest()
    client.force_login(setup["user"])
    gone = client.get(reverse("evidence-download", args=[evidence.pk]))
    assert gone.status_code == 410 and evidence.sha256 in gone.content.decode()


def test_an_audit_pack_of_bucket_evidence_holds_the_files_and_verifies(setup, bucket):
    evidence = add_pdf(setup)
    pack, summary = build_pack(setup["service"])
    row = pack_row(pack, evidence)
    assert (row["integrity"], row["stored_sha256"]) == ("OK", evidence.sha256)
    with zipfile.ZipFile(io.BytesIO(pack)) as zf:
        assert zf.read(row["path"]) == PDF
    result = verify(io.BytesIO(pack), public_key_pem())
    assert result.ok and result.warnings == [], result.problems
    assert summary.intact


def test_an_object_changed_or_lost_in_the_bucket_is_flagged(client, setup, bucket):
    changed, lost = add_pdf(setup), add_pdf(setup, PDF + b"second version")
    client_s3, _ = bucket
    tampered = PDF + b"appended in the bucket"
    client_s3.put_object(Bucket=servers.S3_BUCKET, Key=stored_key(bucket, changed), Body=tampered)
    client_s3.delete_object(Bucket=servers.S3_BUCKET, Key=stored_key(bucket, lost))

    pack, summary = build_pack(setup["service"])
    assert (summary.mismatched, summary.missing) == ((changed.pk,), (lost.pk,))
    assert pack_row(pack, changed)["integrity"] == "MISMATCH"
    assert pack_row(pack, changed)["stored_sha256"] == hashlib.sha256(tampered).hexdigest()
    assert pack_row(pack, lost)["integrity"] == "MISSING"
    result = verify(io.BytesIO(pack), public_key_pem())
    assert result.ok and len(result.warnings) == 2, result.problems

    # A download serves what is stored, with the upload hash to check it against.
    client.force_login(setup["user"])
    download = client.get(reverse("evidence-download", args=[changed.pk]))
    body = b"".join(download.streaming_content)
    assert body == tampered
    assert hashlib.sha256(body).hexdigest() != download["X-Evidence-SHA256"] == changed.sha256
