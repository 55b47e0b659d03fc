"""The signed audit pack: one ZIP that an auditor can check without trusting whoever handed
it over.

A pack holds the register (CSV and JSON), every evidence file with an index of all evidence
(links and purged tombstones too), the events and field history, and a manifest of every
file's SHA-256 and size, signed with the installation's Ed25519 key. Each entry streams into
the ZIP as it is made, so memory stays flat however large the register or its evidence.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from obligations.dates import end_of_day
from obligations.exports.pack_files import READ_BYTES, Pack, write_history
from obligations.exports.signing import signing_key
from obligations.exports.tables import CHUNK, register_rows, stream_csv, stream_json
from obligations.register.models import Evidence, Obligation
from obligations.register.selectors import register
from obligations.register.uploads import ZIP_BASED

FORMAT = "osa-tracker-audit-pack/1"


MANIFEST = "manifest.json"


SIGNATURE = "manifest.sig"


EVIDENCE_INDEX = "evidence/index.json"


SPOOL = 1024 * 1024


# What the index says of a stored file, checked against the SHA-256 recorded at upload.
OK, MISMATCH, MISSING = "OK", "MISMATCH", "MISSING"


# Evidence of these types is compressed already (intake checked that each starts as its type
# does): deflating it again would cost more time than anything else in a pack and save next
# to nothing, so it goes in as it is (ZIP_STORED). Everything else is deflated.
PRECOMPRESSED = frozenset({"application/pdf", "image/png", "image/jpeg", *ZIP_BASED})


@dataclass(frozen=True)
class PackSummary:
    """What went into a pack."""

    title: str
    created_at: dt.datetime
    as_of: dt.date | None
    obligations: int
    files: int  # entries the manifest lists
    evidence: int  # rows in the evidence index (files, links, purged)
    evidence_files: int  # evidence files copied into the pack
    # Evidence ids whose stored file no longer matched the SHA-256 recorded at upload (packed
    # as found, flagged in the index), or could not be read at all (in the index only).
    mismatched: tuple[int, ...]
    missing: tuple[int, ...]
    manifest_sha256: str

    @property
    def intact(self) -> bool:
        return not self.mismatched and not self.missing

    def describe(self) -> str:
        head = (
            f"{self.obligations} obligation(s), {self.evidence} evidence row(s), "
            f"{self.evidence_files} evidence file(s), {self.files} file(s) in the manifest."
        )
        return "\n".join([head, *integrity_lines(self.mismatched, self.missing)])


def integrity_lines(mismatched: Iterable[int], missing: Iterable[int]) -> list[str]:
    return [
        f"MISMATCH: evidence {i}: the stored file no longer matches the SHA-256 recorded at "
        "upload; packed as found and flagged in evidence/index.json."
        for i in mismatched
    ] + [
        f"MISSING: evidence {i}: the stored file could not be read; listed in "
        "evidence/index.json only."
        for i in missing
    ]


def write_pack(
    *,
    obligations: QuerySet[Obligation],
    title: str,
    today: dt.date,
    out: IO[bytes],
    as_of: dt.date | None = None,
) -> PackSummary:
    """Write the signed audit pack of `obligations` to `out` (a seekable binary file).

    With `as_of`, the register is as it stood at the end of that day (and "overdue" is
    judged on it), and evidence, events and history stop there too. The queries are a
    constant number, however many obligations, evidence files and events there are.
    """
    key = signing_key()  # first, so that a missing key fails before any work
    created_at = timezone.now()
    end = end_of_day(as_of) if as_of else None
    ids = obligations.order_by().values("pk")
    with snapshot(), zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        pack = Pack(zf)
        count = _write_register(pack, obligations, title=title, today=today, as_of=as_of)
        evidence = write_evidence(pack, ids, end)
        write_history(pack, ids, end)
        pack.text(
            "README.txt",
            [
                readme(
                    title=title,
                    created_at=created_at,
                    as_of=as_of,
                    obligations=count,
                    evidence=evidence,
                )
            ],
        )
        manifest = {
            "format": FORMAT,
            "title": title,
            "created_at": created_at.isoformat(),
            "as_of": as_of.isoformat() if as_of else None,
            "obligations": count,
            "files": dict(sorted(pack.files.items())),
        }
        data = (json.dumps(manifest, indent=2) + "\n").encode()
        zf.writestr(MANIFEST, data)
        zf.writestr(SIGNATURE, base64.b64encode(key.sign(data)) + b"\n")
    return PackSummary(
        title=title,
        created_at=created_at,
        as_of=as_of,
        obligations=count,
        files=len(pack.files),
        evidence=evidence.rows,
        evidence_files=evidence.files,
        mismatched=tuple(evidence.mismatched),
        missing=tuple(evidence.missing),
        manifest_sha256=hashlib.sha256(data).hexdigest(),
    )


@contextlib.contextmanager
def snapshot() -> Iterator[None]:
    """Every query of a pack reads one snapshot of the database, so that a change committed
    while the pack is written cannot make its files disagree (the register without an event
    that events.csv holds). PostgreSQL's READ COMMITTED takes a new snapshot per query; a
    REPEATABLE READ transaction keeps the first. SQLite's read transaction is a snapshot
    already. Inside a transaction the caller opened, the pack reads in that one."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _write_register(
    pack: Pack,
    obligations: QuerySet[Obligation],
    *,
    title: str,
    today: dt.date,
    as_of: dt.date | None,
) -> int:
    """register.csv and register.json, from one read of the register (for a provider of
    100,000 obligations, the largest query of the pack); the number of obligations."""
    rows = register(obligations, today=today, as_of=as_of)
    day = as_of or today
    count = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal count
        for row in register_rows(rows, day):
            count += 1
            yield row

    as_of_iso = as_of.isoformat() if as_of else None
    meta = {"title": title, "as_of": as_of_iso, "overdue_judged_on": day.isoformat()}
    for_csv, for_json = itertools.tee(counted())
    json_pieces = stream_json(for_json, meta)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL) as spool:

        def csv_and_json() -> Iterator[str]:
            for piece in stream_csv(for_csv):
                yield piece
                # The JSON kept a piece behind the CSV, so that the rows between them (all
                # the tee holds) are two pieces at most, however long the register.
                spool.write(next(json_pieces, "").encode())

        pack.text("register.csv", csv_and_json())
        for piece in json_pieces:
            spool.write(piece.encode())
        pack.spooled("register.json", spool)
    return count


@dataclass
class _EvidenceTally:
    rows: int = 0
    files: int = 0
    mismatched: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def safe_name(name: str) -> str:
    """A file name that is the same on every system and cannot climb out of its folder."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned[-100:] or "file"


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def write_evidence(pack: Pack, ids: QuerySet[Any], end: dt.datetime | None) -> _EvidenceTally:
    """Every evidence file, re-hashed as it is copied, then the index of every evidence row
    (one query, read as values: a pack of a provider reads thousands of rows)."""
    evidence = Evidence.objects.filter(cycle__obligation__in=ids).order_by(
        "cycle__obligation_id", "pk"
    )
    if end is not None:
        evidence = evidence.filter(uploaded_at__lt=end)
    tally = _EvidenceTally()
    # The index can only be written after the files, so it waits in a temporary file.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL) as index:
        index.write(b'{"format": "' + FORMAT.encode() + b'", "evidence": [')
        for item in evidence.values(*EVIDENCE_VALUES).iterator(chunk_size=CHUNK):
            row = _evidence_row(item)
            if item["file"]:
                row["path"] = (
                    f"evidence/{row['obligation']}/{row['id']}-{safe_name(item['original_name'])}"
                )
                row["integrity"], row["stored_sha256"] = _copy(pack, item, row["path"])
                if row["integrity"] == MISSING:
                    row["path"] = None
                    tally.missing.append(row["id"])
                else:
                    tally.files += 1
                    if row["integrity"] == MISMATCH:
                        tally.mismatched.append(row["id"])
            index.write(b"," * bool(tally.rows) + b"\n" + json.dumps(row).encode())
            tally.rows += 1
        index.write(b"\n]}\n")
        pack.spooled(EVIDENCE_INDEX, index)
    return tally


EVIDENCE_VALUES = (
    "id",
    "cycle__obligation_id",
    "cycle_id",
    "kind",
    "title",
    "url",
    "original_name",
    "content_type",
    "sha256",
    "size",
    "uploaded_by__username",
    "uploaded_at",
    "expires_on",
    "supersedes_id",
    "purged_at",
    "purged_by__username",
    "purge_reason",
    "file",
)


def _evidence_row(item: dict[str, Any]) -> dict[str, Any]:
    """An evidence row of the index, from its EVIDENCE_VALUES."""
    return {
        "id": item["id"],
        "obligation": item["cycle__obligation_id"],
        "cycle": item["cycle_id"],
        "kind": item["kind"],
        "title": item["title"],
        "url": item["url"] or None,
        "original_name": item["original_name"],
        "content_type": item["content_type"],
        "sha256": item["sha256"] or None,  # as recorded at upload
        "size": item["size"],
        "uploaded_by": item["uploaded_by__username"],
        "uploaded_at": _iso(item["uploaded_at"]),
        "expires_on": _iso(item["expires_on"]),
        "supersedes": item["supersedes_id"],
        "purged_at": _iso(item["purged_at"]),
        "purged_by": item["purged_by__username"],
        "purge_reason": item["purge_reason"],
        "path": None,
        "integrity": None,
        "stored_sha256": None,
    }


def _copy(pack: Pack, item: dict[str, Any], path: str) -> tuple[str, str | None]:
    """Stream a stored file into the pack: (integrity, the SHA-256 of what was packed)."""
    storage = Evidence._meta.get_field("file").storage
    try:
        stored = storage.open(item["file"], "rb")
    except OSError:
        return MISSING, None
    with stored, pack.entry(path, deflate=item["content_type"] not in PRECOMPRESSED) as sink:
        for chunk in stored.chunks(READ_BYTES):
            sink.write(chunk)
    packed = str(pack.files[path]["sha256"])
    return (OK if packed == item["sha256"] else MISMATCH), packed


def readme(
    *,
    title: str,
    created_at: dt.datetime,
    as_of: dt.date | None,
    obligations: int,
    evidence: _EvidenceTally,
) -> str:
    register = (
        f"as it stood at the end of {as_of.isoformat()} (Europe/London); evidence, events "
        "and history stop there too"
        if as_of
        else "as it stood when the pack was made"
    )
    if evidence.mismatched or evidence.missing:
        integrity = "WARNING: not all evidence is as it was uploaded.\n" + "\n".join(
            integrity_lines(evidence.mismatched, evidence.missing)
        )
    else:
        integrity = (
            f"All {evidence.files} evidence file(s) matched the SHA-256 recorded when each "
            "was uploaded."
        )
    return f"""OSA tracker audit pack
======================

{title}
Made: {created_at.isoformat()}
The register: {register}.
Obligations: {obligations}

What is in it
-------------
register.csv, register.json
    The obligations register, one row per obligation.
evidence/<obligation id>/<evidence id>-<name>
    Every evidence file, copied from storage.
evidence/index.json
    Every evidence row: files, links and purged tombstones (a purged file is gone; its
    SHA-256, uploader and who purged it, when and why remain). "sha256" is the hash
    recorded at upload; "integrity" is the check made when the pack was made.
history/events.csv
    Every event: status changes, due dates, evidence added and purged; who, when, why.
history/obligation-history.csv, history/evidence-history.csv
    The field history of the obligations and their evidence.
manifest.json
    The SHA-256 and size of every other file.
manifest.sig
    The Ed25519 signature (base64) of the exact bytes of manifest.json.

Evidence integrity when packed
------------------------------
{integrity}

How to verify
-------------
With the tracker (its public key: `python manage.py audit_pack_public_key`):

    python manage.py verify_audit_pack PACK.zip [--public-key FILE]

Without it, given the installation's public key in key.pem (OpenSSL 3):

    base64 -d manifest.sig > manifest.sig.bin
    openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in manifest.json \\
        -sigfile manifest.sig.bin
    sha256sum register.csv    # and so on: each must match manifest.json

A changed, added or removed file, or a changed manifest, fails verification.
"""
