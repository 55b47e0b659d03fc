"""The signed audit pack: everything an auditor needs in one ZIP, and any change to it shows."""

import base64
import csv
import datetime as dt
import hashlib
import io
import json
import os
import stat
import zipfile
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from obligations.access.models import Role
from obligations.exports import tables
from obligations.exports.auditpack import PackSummary, write_pack
from obligations.exports.pack_files import history_converter
from obligations.exports.pack_verify import verify
from obligations.exports.signing import load_public_key, public_key_pem
from obligations.providers.models import RevenuePeriod, Service
from obligations.register.evidence import add_evidence_file, add_evidence_link, purge_evidence
from obligations.register.models import Event, Obligation
from obligations.register.states import EventKind, EventSource
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member
from tests.helpers import assert_constant_queries, client_for, private_pem

PDF = b"%PDF-1.4\n" + b"illegal content risk assessment " * 300 + b"\n%%EOF\n"
NOTES = b"Moderation team minutes, 3 November 2026.\n"
SOURCE = EventSource.ADMIN


def public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(autouse=True)
def signing_key(settings):  # type: ignore[no-untyped-def]
    """Each test signs with its own key, never with a development key under var/."""
    key = Ed25519PrivateKey.generate()
    settings.AUDIT_PACK_SIGNING_KEY = private_pem(key)
    settings.AUDIT_PACK_SIGNING_KEY_FILE = ""
    return key


def add_file(actor, cycle, name, content, title="Evidence"):  # type: ignore[no-untyped-def]
    return add_evidence_file(
        actor=actor,
        cycle=cycle,
        uploaded=SimpleUploadedFile(name, content),
        title=title,
        source=SOURCE,
    )


@pytest.fixture
def setup(catalogue):  # type: ignore[no-untyped-def]
    org = OrganisationFactory(name="Ours")
    service = applied_service(provider=ProviderFactory(organisation=org))
    applied_service(provider=ProviderFactory(organisation=OrganisationFactory(name="Theirs")))
    user = member(org, username="casey")
    admin = member(org, role=Role.ADMIN, username="ada")
    ra = service.obligations.get(duty__code="U2U-ILLEGAL-RA")
    other = service.obligations.exclude(pk=ra.pk).order_by("pk").first()
    pdf = add_file(user, ra.current_cycle, "Illegal content RA (v2).pdf", PDF, "The RA")
    notes = add_file(user, other.current_cycle, "minutes.txt", NOTES, "Minutes")
    link = add_evidence_link(
        actor=user,
        cycle=ra.current_cycle,
        url="https://example.test/terms",
        title="Terms of service",
        source=SOURCE,
    )
    purged = add_file(user, ra.current_cycle, "takedown.pdf", PDF + b"more", "Takedown record")
    purge_evidence(
        actor=admin, evidence=purged, reason="Contained CSEA: reported to NCA", source=SOURCE
    )
    return {
        "service": service,
        "ra": ra,
        "other": other,
        "user": user,
        "pdf": pdf,
        "notes": notes,
        "link": link,
        "purged": purged,
    }


def build(service, **kwargs):  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    summary = write_pack(
        obligations=Obligation.objects.filter(service=service),
        title=f"Service: {service}",
        today=kwargs.pop("today", TODAY),
        out=out,
        **kwargs,
    )
    return out.getvalue(), summary


def read(pack: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(pack)) as zf:
        return zf.read(name)


def index_of(pack: bytes) -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in json.loads(read(pack, "evidence/index.json"))["evidence"]}


def csv_rows(pack: bytes, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read(pack, name).decode("utf-8-sig"))))


def rewrite(pack: bytes, changes: dict[str, bytes]) -> bytes:
    """The pack with some entries' bytes replaced (or added), the rest copied as they are."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(pack)) as old,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new,
    ):
        for name in old.namelist():
            new.writestr(name, changes.get(name, old.read(name)))
        for name in changes.keys() - set(old.namelist()):
            new.writestr(name, changes[name])
    return out.getvalue()


def recomputed_manifest(pack: bytes) -> bytes:
    """manifest.json with every file's hash and size recomputed from the pack as it is."""
    manifest = json.loads(read(pack, "manifest.json"))
    with zipfile.ZipFile(io.BytesIO(pack)) as zf:
        for name in manifest["files"]:
            data = zf.read(name)
            manifest["files"][name] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
    return json.dumps(manifest, indent=2).encode()


@pytest.fixture
def out_dir(tmp_path):  # type: ignore[no-untyped-def]
    """A directory of the test's own (tmp_path also holds the evidence storage)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def installation_key() -> str:
    return public_key_pem()


def test_a_pack_holds_the_register_evidence_and_history_and_verifies(setup):
    pack, summary = build(setup["service"])
    result = verify(io.BytesIO(pack), installation_key())
    assert result.ok, result.problems
    assert result.signature_valid and result.warnings == []

    ra, pdf, notes = setup["ra"], setup["pdf"], setup["notes"]
    pdf_path = f"evidence/{ra.pk}/{pdf.pk}-Illegal_content_RA_v2_.pdf"
    notes_path = f"evidence/{setup['other'].pk}/{notes.pk}-minutes.txt"
    assert read(pack, pdf_path) == PDF
    assert read(pack, notes_path) == NOTES
    index = index_of(pack)
    assert set(index) == {pdf.pk, notes.pk, setup["link"].pk, setup["purged"].pk}
    assert index[pdf.pk] | {"uploaded_at": None} == {
        "id": pdf.pk,
        "obligation": ra.pk,
        "cycle": ra.current_cycle_id,
        "kind": "file",
        "title": "The RA",
        "url": None,
        "original_name": "Illegal content RA (v2).pdf",
        "content_type": "application/pdf",
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "size": len(PDF),
        "uploaded_by": "casey",
        "uploaded_at": None,
        "expires_on": None,
        "supersedes": None,
        "purged_at": None,
        "purged_by": None,
        "purge_reason": "",
        "path": pdf_path,
        "integrity": "OK",
        "stored_sha256": hashlib.sha256(PDF).hexdigest(),
    }
    link = index[setup["link"].pk]
    assert (link["url"], link["path"], link["integrity"]) == (
        "https://example.test/terms",
        None,
        None,
    )
    # A purged file is gone: the tombstone is in the index, nothing in the pack.
    purged = index[setup["purged"].pk]
    assert (purged["path"], purged["purged_by"], purged["purge_reason"], purged["sha256"]) == (
        None,
        "ada",
        "Contained CSEA: reported to NCA",
        hashlib.sha256(PDF + b"more").hexdigest(),
    )
    with zipfile.ZipFile(io.BytesIO(pack)) as zf:
        evidence_files = [n for n in zf.namelist() if n.startswith("evidence/")]
    assert sorted(evidence_files) == sorted([pdf_path, notes_path, "evidence/index.json"])

    obligations = setup["service"].obligations.count()
    assert (summary.obligations, summary.evidence, summary.evidence_files) == (obligations, 4, 2)
    assert summary.intact and summary.mismatched == summary.missing == ()
    readme = read(pack, "README.txt").decode()
    assert "python manage.py verify_audit_pack PACK.zip" in readme
    assert (
        f"Obligations: {obligations}" in readme and "as it stood when the pack was made" in readme
    )


def test_the_manifest_lists_every_other_file_with_its_hash_and_size(setup):
    pack, summary = build(setup["service"])
    manifest_bytes = read(pack, "manifest.json")
    manifest = json.loads(manifest_bytes)
    assert (manifest["format"], manifest["title"], manifest["as_of"]) == (
        "osa-tracker-audit-pack/1",
        f"Service: {setup['service']}",
        None,
    )
    assert manifest["obligations"] == setup["service"].obligations.count()
    with zipfile.ZipFile(io.BytesIO(pack)) as zf:
        names = zf.namelist()
        assert set(manifest["files"]) == set(names) - {"manifest.json", "manifest.sig"}
        for name, listed in manifest["files"].items():
            data = zf.read(name)
            assert listed == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    for name in ("register.csv", "register.json", "README.txt", "history/events.csv"):
        assert name in manifest["files"]
    assert summary.files == len(manifest["files"])
    assert summary.manifest_sha256 == hashlib.sha256(manifest_bytes).hexdigest()
    # The signature is Ed25519 over the exact bytes of manifest.json.
    signature = base64.b64decode(read(pack, "manifest.sig"))
    load_public_key(installation_key()).verify(signature, manifest_bytes)


def test_evidence_compressed_already_is_stored_and_the_rest_deflated(setup):
    pack, _ = build(setup["service"])
    pdf_path = f"evidence/{setup['ra'].pk}/{setup['pdf'].pk}-Illegal_content_RA_v2_.pdf"
    notes_path = f"evidence/{setup['other'].pk}/{setup['notes'].pk}-minutes.txt"
    with zipfile.ZipFile(io.BytesIO(pack)) as zf:
        kinds = {info.filename: info.compress_type for info in zf.infolist()}
    assert kinds[pdf_path] == zipfile.ZIP_STORED
    assert {kinds[notes_path], kinds["register.csv"], kinds["evidence/index.json"]} == {
        zipfile.ZIP_DEFLATED
    }
    assert verify(io.BytesIO(pack), installation_key()).ok


def test_the_register_has_one_row_per_obligation(setup):
    pack, _ = build(setup["service"])
    expected = set(setup["service"].obligations.values_list("pk", flat=True))
    rows = csv_rows(pack, "register.csv")
    assert sorted(int(row["Obligation ID"]) for row in rows) == sorted(expected)
    ra_row = next(row for row in rows if int(row["Obligation ID"]) == setup["ra"].pk)
    assert (ra_row["Duty code"], ra_row["Evidence count"]) == ("U2U-ILLEGAL-RA", "2")
    register = json.loads(read(pack, "register.json"))
    assert {row["id"] for row in register["obligations"]} == expected


def test_a_register_of_many_pieces_is_whole_in_both_files(setup, monkeypatch):
    """register.json is written from the CSV's read of the register, a piece behind it:
    with pieces of two rows, both files are still every row, as with one piece."""
    whole, _ = build(setup["service"])
    monkeypatch.setattr(tables, "PIECE_ROWS", 2)
    pieces, _ = build(setup["service"])
    assert setup["service"].obligations.count() > 2 * 2  # more pieces than the JSON lags
    for name in ("register.csv", "register.json"):
        assert read(pieces, name) == read(whole, name)
    assert len(json.loads(read(pieces, "register.json"))["obligations"]) == len(
        csv_rows(pieces, "register.csv")
    )


def test_the_history_files_hold_every_event_and_field_change(setup):
    pack, _ = build(setup["service"])
    obligations = set(setup["service"].obligations.values_list("pk", flat=True))
    events = csv_rows(pack, "history/events.csv")
    expected = Event.objects.filter(obligation__in=obligations)
    assert sorted(int(e["id"]) for e in events) == sorted(expected.values_list("pk", flat=True))
    purge = next(e for e in events if e["kind"] == EventKind.EVIDENCE_PURGED)
    assert (purge["actor"], purge["evidence"], purge["obligation"]) == (
        "ada",
        str(setup["purged"].pk),
        str(setup["ra"].pk),
    )
    history = csv_rows(pack, "history/obligation-history.csv")
    assert {int(row["id"]) for row in history} == obligations
    assert all(row["applicable"] in {"yes", "no"} for row in history)
    evidence_history = csv_rows(pack, "history/evidence-history.csv")
    purged = [row for row in evidence_history if row["id"] == str(setup["purged"].pk)]
    assert [(row["history_type"], row["purged_by"]) for row in purged] == [
        ("created", ""),
        ("changed", "ada"),
    ]


def test_history_cells_are_iso_dates_words_and_text_that_cannot_run_as_a_formula(setup):
    formula = '=HYPERLINK("https://evil.test")'
    doomed = add_file(setup["user"], setup["ra"].current_cycle, "x.pdf", PDF + b"x", "X")
    purge_evidence(
        actor=get_user_model().objects.get(username="ada"),
        evidence=doomed,
        reason=formula,
        source=SOURCE,
    )
    pack, _ = build(setup["service"])
    events = csv_rows(pack, "history/events.csv")
    purge = next(
        e for e in events if e["evidence"] == str(doomed.pk) and e["kind"] == "evidence_purged"
    )
    assert purge["reason"].startswith("'" + formula)
    stored = Event.objects.get(pk=purge["id"])
    assert dt.datetime.fromisoformat(purge["at"]) == stored.at  # ISO 8601, with its offset
    assert "T" in purge["at"] and purge["at"].endswith("+00:00")
    assert purge["due_date"] == "" and purge["from_status"] == ""
    dated = next(e for e in events if e["due_date"])
    assert dated["due_date"] == Event.objects.get(pk=dated["id"]).due_date.isoformat()
    rows = csv_rows(pack, "history/evidence-history.csv")
    changed = next(r for r in rows if r["id"] == str(doomed.pk) and r["purge_reason"])
    assert (changed["history_type"], changed["purge_reason"]) == ("changed", "'" + formula)
    assert changed["size"] == str(len(PDF) + 1) and changed["expires_on"] == ""


def test_a_history_column_of_a_type_without_a_cell_format_is_refused():
    with pytest.raises(TypeError, match="no cell format for amount_gbp"):
        history_converter(RevenuePeriod, "amount_gbp")


def test_an_evidence_file_changed_inside_the_pack_fails(setup):
    pack, _ = build(setup["service"])
    path = next(n for n in json.loads(read(pack, "manifest.json"))["files"] if n.endswith(".pdf"))
    tampered = rewrite(pack, {path: PDF.replace(b"illegal", b"legal!!")})
    result = verify(io.BytesIO(tampered), installation_key())
    assert not result.ok and result.signature_valid
    assert any(p.startswith(f"{path}: not the file the manifest lists") for p in result.problems)
    assert any(
        "does not match the SHA-256 that evidence/index.json records" in p for p in result.problems
    )


@pytest.mark.parametrize("resign", [False, True], ids=["old signature", "another key"])
def test_a_changed_file_with_a_recomputed_manifest_fails_the_signature(setup, resign):
    pack, _ = build(setup["service"])
    changed = rewrite(pack, {"register.csv": b"Obligation ID\n1\n"})
    manifest = recomputed_manifest(changed)
    forger = Ed25519PrivateKey.generate()
    changes = {"manifest.json": manifest}
    if resign:
        changes["manifest.sig"] = base64.b64encode(forger.sign(manifest))
    tampered = rewrite(changed, changes)
    result = verify(io.BytesIO(tampered), installation_key())
    assert not result.signature_valid
    assert [p for p in result.problems if p.startswith("manifest.sig")] == [
        "manifest.sig: the signature does not verify with this public key: manifest.json was "
        "changed after signing, or the pack was signed with another key."
    ]
    # Only the signature gives it away: the forged manifest matches every file.
    assert len(result.problems) == 1
    if resign:
        # With the forger's own key it verifies: the public key must come from the installation.
        assert verify(io.BytesIO(tampered), public_pem(forger)).ok


def test_a_file_added_to_the_pack_or_one_name_twice_fails(setup):
    pack, _ = build(setup["service"])
    added = rewrite(pack, {"evidence/999/1-extra.pdf": PDF})
    result = verify(io.BytesIO(added), installation_key())
    assert result.problems == ["evidence/999/1-extra.pdf: in the pack but not in the manifest."]
    # A second entry of a listed name: unzip tools show one of the two.
    twice = io.BytesIO(pack)
    with (
        pytest.warns(UserWarning, match="Duplicate name"),
        zipfile.ZipFile(twice, "a") as zf,
    ):
        zf.writestr("register.csv", b"forged")
    result = verify(io.BytesIO(twice.getvalue()), installation_key())
    assert "register.csv: in the pack 2 times." in result.problems


def test_a_file_removed_from_the_pack_fails(setup):
    pack, _ = build(setup["service"])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(pack)) as old, zipfile.ZipFile(out, "w") as new:
        for name in old.namelist():
            if name != "history/events.csv":
                new.writestr(name, old.read(name))
    result = verify(io.BytesIO(out.getvalue()), installation_key())
    assert result.problems == ["history/events.csv: in the manifest but not in the pack."]


def test_what_is_not_a_pack_is_a_clear_problem(setup, tmp_path):
    key = installation_key()
    assert verify(io.BytesIO(b"PK not really"), key).problems == [
        "Not a ZIP file, or a damaged one: not an audit pack."
    ]
    assert verify(tmp_path / "absent.zip", key).problems == [
        "Cannot read the pack: No such file or directory."
    ]
    bare, _ = build(setup["service"])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bare)) as old, zipfile.ZipFile(out, "w") as new:
        new.writestr("register.csv", old.read("register.csv"))
    assert verify(io.BytesIO(out.getvalue()), key).problems == [
        "No manifest.json or manifest.sig: not an audit pack, or not a complete one."
    ]
    garbled = rewrite(bare, {"manifest.json": b"[1, 2]"})
    problems = verify(io.BytesIO(garbled), key).problems
    assert problems[-1] == "manifest.json: not a manifest of osa-tracker-audit-pack/1."
    with pytest.raises(ValueError, match="not a public key in PEM"):
        verify(io.BytesIO(bare), "not a key")


def test_a_stored_file_changed_or_lost_after_upload_is_flagged(setup, evidence_storage):
    pdf, notes = setup["pdf"], setup["notes"]
    (evidence_storage / pdf.file.name).write_bytes(PDF + b"appended later")
    (evidence_storage / notes.file.name).unlink()
    pack, summary = build(setup["service"])
    assert (summary.mismatched, summary.missing, summary.intact) == ((pdf.pk,), (notes.pk,), False)
    index = index_of(pack)
    changed, lost = index[pdf.pk], index[notes.pk]
    assert (changed["integrity"], changed["sha256"], changed["stored_sha256"]) == (
        "MISMATCH",
        hashlib.sha256(PDF).hexdigest(),
        hashlib.sha256(PDF + b"appended later").hexdigest(),
    )
    assert read(pack, changed["path"]) == PDF + b"appended later"  # packed as found
    assert (lost["integrity"], lost["path"]) == ("MISSING", None)
    readme = read(pack, "README.txt").decode()
    assert f"MISMATCH: evidence {pdf.pk}" in readme and f"MISSING: evidence {notes.pk}" in readme
    assert f"MISMATCH: evidence {pdf.pk}" in summary.describe()
    # The pack is what the installation made, so it verifies; what it says about the
    # evidence comes back as warnings.
    result = verify(io.BytesIO(pack), installation_key())
    assert result.ok, result.problems
    assert sorted(w.split(":")[0] for w in result.warnings) == sorted(
        [f"evidence {pdf.pk}", f"evidence {notes.pk}"]
    )


def test_a_pack_as_of_a_past_day_stops_there(setup, clock):
    clock.shift(dt.timedelta(days=2))
    later = add_file(setup["user"], setup["ra"].current_cycle, "later.pdf", PDF + b"later")
    pack, _ = build(setup["service"], today=TODAY + dt.timedelta(days=2), as_of=TODAY)
    assert verify(io.BytesIO(pack), installation_key()).ok
    assert json.loads(read(pack, "manifest.json"))["as_of"] == TODAY.isoformat()
    assert later.pk not in index_of(pack) and setup["pdf"].pk in index_of(pack)
    events = csv_rows(pack, "history/events.csv")
    assert str(later.pk) not in {e["evidence"] for e in events}
    assert f"as it stood at the end of {TODAY.isoformat()}" in read(pack, "README.txt").decode()
    now_pack, _ = build(setup["service"], today=TODAY + dt.timedelta(days=2))
    assert later.pk in index_of(now_pack)


def test_writing_a_pack_costs_the_same_queries_for_2_or_6_obligations(setup):
    user, service = setup["user"], setup["service"]
    candidates = list(service.obligations.order_by("pk"))
    chosen: list[int] = []

    def grow(n: int) -> None:
        while len(chosen) < n:
            obligation = candidates[len(chosen)]
            content = PDF + str(obligation.pk).encode()
            add_file(user, obligation.current_cycle, f"{obligation.pk}.pdf", content)
            add_evidence_link(
                actor=user,
                cycle=obligation.current_cycle,
                url=f"https://example.test/{obligation.pk}",
                title="Policy",
                source=SOURCE,
            )
            chosen.append(obligation.pk)

    def measure() -> PackSummary:
        return write_pack(
            obligations=Obligation.objects.filter(pk__in=chosen),
            title="Queries",
            today=TODAY,
            out=io.BytesIO(),
        )

    assert assert_constant_queries(grow, measure, sizes=(2, 6)) <= 6
    assert measure().evidence_files >= 6


# --- Commands ---------------------------------------------------------------


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_commands_build_print_the_key_and_verify(setup, tmp_path, out_dir):
    service = setup["service"]
    path = out_dir / "pack.zip"
    out, _ = run("build_audit_pack", "--service", str(service.pk), "--output", str(path))
    assert out.startswith(f"Wrote {path}: {service.obligations.count()} obligation(s)")
    assert [p.name for p in out_dir.iterdir()] == ["pack.zip"]  # no .part left behind
    assert json.loads(read(path.read_bytes(), "manifest.json"))["title"] == (
        f"Service: {service} (built by osa-tracker-system)"
    )
    key, _ = run("audit_pack_public_key")
    assert key.startswith("-----BEGIN PUBLIC KEY-----") and key == installation_key()
    (tmp_path / "key.pem").write_text(key)
    assert run("verify_audit_pack", str(path)) == (
        f"OK: {len(json.loads(read(path.read_bytes(), 'manifest.json'))['files'])} files "
        "verified, signature valid\n",
        "",
    )
    out, _ = run("verify_audit_pack", str(path), "--public-key", str(tmp_path / "key.pem"))
    assert out.startswith("OK: ")

    provider = tmp_path / "provider.zip"
    run("build_audit_pack", "--provider", str(service.provider_id), "--output", str(provider))
    manifest = json.loads(read(provider.read_bytes(), "manifest.json"))
    assert manifest["obligations"] == Obligation.objects.filter(provider=service.provider).count()
    run(
        "build_audit_pack",
        "--service",
        str(service.pk),
        "--as-of",
        "2026-11-01",
        "--output",
        str(provider),
    )
    assert json.loads(read(provider.read_bytes(), "manifest.json"))["as_of"] == "2026-11-01"


def test_verify_command_fails_on_a_tampered_pack_a_bad_path_and_a_non_zip(setup, tmp_path):
    pack, _ = build(setup["service"])
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(rewrite(pack, {"register.csv": b"changed"}))
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"tampered.zip is not valid: register.csv: not the"):
        call_command("verify_audit_pack", str(tampered), stdout=io.StringIO(), stderr=err)
    assert err.getvalue().startswith("PROBLEM: register.csv: not the file the manifest lists")
    with pytest.raises(CommandError, match=r"absent\.zip: no such file"):
        run("verify_audit_pack", str(tmp_path / "absent.zip"))
    (tmp_path / "notes.zip").write_text("just text")
    with pytest.raises(CommandError, match=r"notes\.zip is not valid: Not a ZIP file"):
        run("verify_audit_pack", str(tmp_path / "notes.zip"))
    good = tmp_path / "good.zip"
    good.write_bytes(pack)
    (tmp_path / "other.pem").write_text(public_pem(Ed25519PrivateKey.generate()))
    with pytest.raises(CommandError, match=r"good\.zip is not valid: manifest\.sig: the signature"):
        run("verify_audit_pack", str(good), "--public-key", str(tmp_path / "other.pem"))
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(CommandError, match="--public-key: not a public key in PEM"):
        run("verify_audit_pack", str(good), "--public-key", str(tmp_path / "bad.pem"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", "0"], "No service with id 0"),
        (["--provider", "0"], "No provider with id 0"),
        (["--service", "{service}", "--as-of", "2026-13-01"], "--as-of must be a YYYY-MM-DD"),
        (["--service", "{service}", "--as-of", "2026-11-25"], "the register's past"),
    ],
)
def test_build_command_refuses_what_it_cannot_do(setup, out_dir, args, message):
    args = [a.format(service=setup["service"].pk) for a in args]
    with pytest.raises(CommandError, match=message):
        run("build_audit_pack", *args, "--output", str(out_dir / "pack.zip"))
    assert not list(out_dir.iterdir())


# --- The signing key ---------------------------------------------------------


def test_development_makes_a_private_key_once(settings, out_dir):
    settings.AUDIT_PACK_SIGNING_KEY = ""
    settings.VAR_DIR = out_dir
    first = public_key_pem()
    path = out_dir / "audit-pack-signing-key.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert public_key_pem() == first
    assert [p.name for p in out_dir.iterdir()] == [path.name]


def test_production_without_a_key_refuses_to_sign(settings, out_dir, setup):
    settings.AUDIT_PACK_SIGNING_KEY = ""
    settings.PRODUCTION = True
    settings.VAR_DIR = out_dir
    with pytest.raises(
        ImproperlyConfigured, match="production has no signing key: set AUDIT_PACK_SIGNING_KEY"
    ):
        build(setup["service"])
    with pytest.raises(CommandError, match="production has no signing key"):
        run(
            "build_audit_pack",
            "--service",
            str(setup["service"].pk),
            "--output",
            str(out_dir / "p.zip"),
        )
    assert not list(out_dir.iterdir())  # no development key, no half-written pack


def test_the_key_comes_from_the_environment_or_a_file(settings, tmp_path, signing_key):
    expected = public_pem(signing_key)
    # A PEM in an environment variable often arrives with its line breaks escaped.
    settings.AUDIT_PACK_SIGNING_KEY = private_pem(signing_key).replace("\n", "\\n")
    assert public_key_pem() == expected
    key_file = tmp_path / "signing.pem"
    key_file.write_text(private_pem(signing_key))
    settings.AUDIT_PACK_SIGNING_KEY, settings.AUDIT_PACK_SIGNING_KEY_FILE = "", str(key_file)
    assert public_key_pem() == expected
    settings.AUDIT_PACK_SIGNING_KEY = private_pem(signing_key)
    with pytest.raises(ImproperlyConfigured, match="not both"):
        public_key_pem()
    settings.AUDIT_PACK_SIGNING_KEY = ""
    settings.AUDIT_PACK_SIGNING_KEY_FILE = str(tmp_path / "absent.pem")
    with pytest.raises(ImproperlyConfigured, match="cannot read it: No such file"):
        public_key_pem()
    settings.AUDIT_PACK_SIGNING_KEY_FILE = ""
    settings.AUDIT_PACK_SIGNING_KEY = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ImproperlyConfigured, match="must be Ed25519"):
        public_key_pem()
    settings.AUDIT_PACK_SIGNING_KEY = "-----BEGIN PRIVATE KEY-----\nnonsense\n"
    with pytest.raises(ImproperlyConfigured, match="not an unencrypted private key in PEM"):
        public_key_pem()


# --- Over the API ---------------------------------------------------------------


def test_an_auditor_downloads_a_pack_over_the_api_and_it_verifies(setup, signing_key):
    auditor = member(setup["service"].provider.organisation, role=Role.AUDITOR)
    client = client_for(auditor, read_only=True)
    response = client.get("/api/v1/audit-packs/", {"service": setup["service"].pk})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f"audit-pack-service-{setup['service'].pk}-" in response["Content-Disposition"]
    pack = io.BytesIO(b"".join(response.streaming_content))
    result = verify(pack, public_pem(signing_key))
    assert result.ok, result.problems
    manifest = json.loads(zipfile.ZipFile(pack).read("manifest.json"))
    assert (
        response["X-Manifest-SHA256"]
        == hashlib.sha256(zipfile.ZipFile(pack).read("manifest.json")).hexdigest()
    )
    assert any(path.startswith("evidence/") for path in manifest["files"])
    key = client.get("/api/v1/audit-packs/public-key/").json()
    assert key == {"algorithm": "Ed25519", "public_key_pem": public_pem(signing_key)}


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, "Give one of service=<id> or provider=<id>."),
        ({"service": "1", "provider": "1"}, 400, "Give one of"),
        ({"service": "abc"}, 400, "Give one of"),
        ({"service": "1", "colour": "red"}, 400, "colour: Unknown query parameter"),
        ({"service": "999999"}, 404, "No Service matches"),
        ({"service": "1", "as_of": "1/1/2026"}, 400, "use YYYY-MM-DD"),
    ],
)
def test_a_bad_pack_request_is_a_clear_error(setup, params, status, message):
    response = client_for(setup["user"]).get("/api/v1/audit-packs/", params)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_another_organisations_pack_is_a_404(setup):
    theirs = Service.objects.exclude(provider=setup["service"].provider).get()
    response = client_for(setup["user"]).get("/api/v1/audit-packs/", {"service": theirs.pk})
    assert response.status_code == 404
    response = client_for(setup["user"]).get(
        "/api/v1/audit-packs/", {"provider": theirs.provider_id}
    )
    assert response.status_code == 404
