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
import os
import re
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    FileField,
    ForeignObject,
    IntegerField,
    Model,
    QuerySet,
    TextField,
)
from django.utils import timezone

from obligations import exports, selectors, uploads
from obligations import models as m

FORMAT = "osa-tracker-audit-pack/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
EVIDENCE_INDEX = "evidence/index.json"
DEVELOPMENT_KEY = "audit-pack-signing-key.pem"
# Evidence files are copied in pieces of this size; the index spills to disk past SPOOL.
READ_BYTES = 1024 * 1024
SPOOL = 1024 * 1024
# What the index says of a stored file, checked against the SHA-256 recorded at upload.
OK, MISMATCH, MISSING = "OK", "MISMATCH", "MISSING"
# Evidence of these types is compressed already (intake checked that each starts as its type
# does): deflating it again would cost more time than anything else in a pack and save next
# to nothing, so it goes in as it is (ZIP_STORED). Everything else is deflated.
PRECOMPRESSED = frozenset({"application/pdf", "image/png", "image/jpeg", *uploads.ZIP_BASED})


# --- The signing key --------------------------------------------------------


def signing_key() -> Ed25519PrivateKey:
    """The installation's key: from the environment, else (outside production) a development
    key made in VAR_DIR on first use."""
    inline, path = settings.AUDIT_PACK_SIGNING_KEY, settings.AUDIT_PACK_SIGNING_KEY_FILE
    if inline and path:
        raise ImproperlyConfigured(
            "Set AUDIT_PACK_SIGNING_KEY or AUDIT_PACK_SIGNING_KEY_FILE, not both."
        )
    if inline:
        # An environment variable often carries the PEM's line breaks as a literal "\n".
        pem, origin = inline.replace("\\n", "\n").encode(), "AUDIT_PACK_SIGNING_KEY"
    elif path:
        origin = f"AUDIT_PACK_SIGNING_KEY_FILE ({path})"
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise ImproperlyConfigured(f"{origin}: cannot read it: {exc.strerror}") from None
    elif settings.PRODUCTION:
        raise ImproperlyConfigured(
            "Audit packs are signed, and production has no signing key: set "
            "AUDIT_PACK_SIGNING_KEY to an Ed25519 private key in PEM (PKCS8), or "
            "AUDIT_PACK_SIGNING_KEY_FILE to the path of one "
            "(make one with `openssl genpkey -algorithm ed25519`)."
        )
    else:
        development = Path(settings.VAR_DIR) / DEVELOPMENT_KEY
        pem, origin = _development_key(development), str(development)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The error never quotes the key: it may be half right.
        raise ImproperlyConfigured(
            f"{origin}: not an unencrypted private key in PEM (PKCS8)."
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{origin}: the audit pack signing key must be Ed25519.")
    return key


def _development_key(path: Path) -> bytes:
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Written whole to a private (0600) temporary file, then linked into place: two
        # processes making it at once end up with one key, and neither reads half a file.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".audit-pack-key-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_bytes()


def public_key_pem() -> str:
    """The installation's public key (SubjectPublicKeyInfo PEM), to verify its packs with."""
    return (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def load_public_key(pem: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError with a clear message otherwise."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("not a public key in PEM") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


# --- Writing a pack ---------------------------------------------------------


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


class _Sink:
    """A ZIP entry being written, hashed on the way in."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._raw.write(data)
        self.sha256.update(data)
        self.size += len(data)


class _Pack:
    """The ZIP being written, with the SHA-256 and size of each entry for the manifest."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.files: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def entry(self, name: str, *, deflate: bool = True) -> Iterator[_Sink]:
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        # ZIP64 because a streamed entry's size is not known before it is written.
        with self.zf.open(info, "w", force_zip64=True) as raw:
            sink = _Sink(raw)
            yield sink
        self.files[name] = {"sha256": sink.sha256.hexdigest(), "size": sink.size}

    def text(self, name: str, chunks: Iterable[str]) -> None:
        with self.entry(name) as sink:
            for chunk in chunks:
                sink.write(chunk.encode())

    def spooled(self, name: str, spool: IO[bytes]) -> None:
        """An entry of what was written to `spool` meanwhile: a ZIP takes one entry at a
        time, so an entry made alongside another waits in a temporary file."""
        spool.seek(0)
        with self.entry(name) as sink:
            while chunk := spool.read(READ_BYTES):
                sink.write(chunk)


def write_pack(
    *,
    obligations: QuerySet[m.Obligation],
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
    end = selectors.end_of_day(as_of) if as_of else None
    ids = obligations.order_by().values("pk")
    with snapshot(), zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        pack = _Pack(zf)
        count = _write_register(pack, obligations, title=title, today=today, as_of=as_of)
        evidence = _write_evidence(pack, ids, end)
        _write_history(pack, ids, end)
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
    pack: _Pack,
    obligations: QuerySet[m.Obligation],
    *,
    title: str,
    today: dt.date,
    as_of: dt.date | None,
) -> int:
    """register.csv and register.json, from one read of the register (for a provider of
    100,000 obligations, the largest query of the pack); the number of obligations."""
    rows = selectors.register(obligations, today=today, as_of=as_of)
    day = as_of or today
    count = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal count
        for row in exports.register_rows(rows, day):
            count += 1
            yield row

    as_of_iso = as_of.isoformat() if as_of else None
    meta = {"title": title, "as_of": as_of_iso, "overdue_judged_on": day.isoformat()}
    for_csv, for_json = itertools.tee(counted())
    json_pieces = exports.stream_json(for_json, meta)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL) as spool:

        def csv_and_json() -> Iterator[str]:
            for piece in exports.stream_csv(for_csv):
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


def _write_evidence(pack: _Pack, ids: QuerySet[Any], end: dt.datetime | None) -> _EvidenceTally:
    """Every evidence file, re-hashed as it is copied, then the index of every evidence row
    (one query, read as values: a pack of a provider reads thousands of rows)."""
    evidence = m.Evidence.objects.filter(cycle__obligation__in=ids).order_by(
        "cycle__obligation_id", "pk"
    )
    if end is not None:
        evidence = evidence.filter(uploaded_at__lt=end)
    tally = _EvidenceTally()
    # The index can only be written after the files, so it waits in a temporary file.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL) as index:
        index.write(b'{"format": "' + FORMAT.encode() + b'", "evidence": [')
        for item in evidence.values(*EVIDENCE_VALUES).iterator(chunk_size=exports.CHUNK):
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


def _copy(pack: _Pack, item: dict[str, Any], path: str) -> tuple[str, str | None]:
    """Stream a stored file into the pack: (integrity, the SHA-256 of what was packed)."""
    storage = m.Evidence._meta.get_field("file").storage
    try:
        stored = storage.open(item["file"], "rb")
    except OSError:
        return MISSING, None
    with stored, pack.entry(path, deflate=item["content_type"] not in PRECOMPRESSED) as sink:
        for chunk in stored.chunks(READ_BYTES):
            sink.write(chunk)
    packed = str(pack.files[path]["sha256"])
    return (OK if packed == item["sha256"] else MISMATCH), packed


# (heading, lookup) of each history file's columns.
EVENT_COLUMNS = (
    ("id", "id"),
    ("obligation", "obligation_id"),
    ("cycle", "cycle_id"),
    ("kind", "kind"),
    ("from_status", "from_status"),
    ("to_status", "to_status"),
    ("due_date", "due_date"),
    ("actor", "actor__username"),
    ("at", "at"),
    ("reason", "reason"),
    ("source", "source"),
    ("evidence", "evidence_id"),
)
HISTORY_COLUMNS = (
    ("history_id", "history_id"),
    ("history_date", "history_date"),
    ("history_type", "history_type"),
    ("history_user", "history_user__username"),
    ("history_change_reason", "history_change_reason"),
)
OBLIGATION_HISTORY_COLUMNS = (
    *HISTORY_COLUMNS,
    ("id", "id"),
    ("owner_id", "owner_id"),
    ("owner", "owner__username"),
    ("applicable", "applicable"),
    ("why", "why"),
    ("not_applicable_reason", "not_applicable_reason"),
    ("notes", "notes"),
    ("external_ref", "external_ref"),
)
EVIDENCE_HISTORY_COLUMNS = (
    *HISTORY_COLUMNS,
    ("id", "id"),
    ("cycle", "cycle_id"),
    ("kind", "kind"),
    ("title", "title"),
    ("file", "file"),
    ("url", "url"),
    ("sha256", "sha256"),
    ("size", "size"),
    ("expires_on", "expires_on"),
    ("supersedes", "supersedes_id"),
    ("purged_at", "purged_at"),
    ("purged_by", "purged_by__username"),
    ("purge_reason", "purge_reason"),
)


def _history(model: type[Model]) -> QuerySet[Any]:
    """The django-simple-history rows of a model."""
    history: type[Model] = model.history.model  # type: ignore[attr-defined]
    return history._default_manager.all()


def _write_history(pack: _Pack, ids: QuerySet[Any], end: dt.datetime | None) -> None:
    """The events and the field history of the obligations and their evidence (a query each)."""
    events = m.Event.objects.filter(obligation__in=ids).order_by("at", "id")
    obligation_history = (
        _history(m.Obligation).filter(id__in=ids).order_by("history_date", "history_id")
    )
    evidence_history = (
        _history(m.Evidence)
        .filter(cycle__obligation__in=ids)
        .order_by("history_date", "history_id")
    )
    if end is not None:
        events = events.filter(at__lt=end)
        obligation_history = obligation_history.filter(history_date__lt=end)
        evidence_history = evidence_history.filter(history_date__lt=end)
    for name, qs, columns in (
        ("history/events.csv", events, EVENT_COLUMNS),
        ("history/obligation-history.csv", obligation_history, OBLIGATION_HISTORY_COLUMNS),
        ("history/evidence-history.csv", evidence_history, EVIDENCE_HISTORY_COLUMNS),
    ):
        header = [heading for heading, _ in columns]
        lookups = [lookup for _, lookup in columns]
        rows = qs.values_list(*lookups).iterator(chunk_size=exports.CHUNK)
        pack.text(name, exports.csv_pieces(header, _history_cells(qs.model, lookups, rows)))


# simple_history's codes, in words: "+" and "-" would read as formulas in a spreadsheet.
HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}


def _yes_no(value: bool | None) -> str:
    return "" if value is None else "yes" if value else "no"


def _moment(value: dt.datetime | None) -> str:
    return "" if value is None else value.isoformat()


def _history_type(value: str | None) -> str | None:
    return exports.safe_cell(HISTORY_TYPES.get(value, value) if value else value)


def _converter(model: type[Model], lookup: str) -> Callable[[Any], Any] | None:
    """How the values of `lookup` (a column of `model`'s values_list) become cells, chosen
    once per column by the field's type rather than per value (a provider's pack has about
    100,000 history cells). None where the csv module already writes the value as a cell:
    a number, a date (str() is ISO), or no value (empty)."""
    column = get_fields_from_path(model, lookup)[-1]
    if isinstance(column, ForeignObject):  # an id: as its target's column
        column = column.target_field
    if column.name == "history_type":
        return _history_type
    if isinstance(column, BooleanField):
        return _yes_no
    if isinstance(column, DateTimeField):
        return _moment
    if isinstance(column, (DateField, IntegerField)):
        return None
    if isinstance(column, (CharField, TextField, FileField)):
        return exports.safe_cell
    raise TypeError(f"no cell format for {lookup} ({type(column).__name__})")


def _history_cells(
    model: type[Model], lookups: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Iterator[list[Any]]:
    """Each row's values as cells."""
    converters = [(i, _converter(model, lookup)) for i, lookup in enumerate(lookups)]
    todo = [(i, convert) for i, convert in converters if convert is not None]
    for row in rows:
        cells = list(row)
        for i, convert in todo:
            cells[i] = convert(cells[i])
        yield cells


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


# --- Verifying a pack -------------------------------------------------------


# What zipfile raises for a damaged or doctored archive (an entry's bad CRC, compression or
# encryption it cannot read, an offset out of range), besides OSError for the file itself.
DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
)


@dataclass
class VerifyResult:
    """Problems make the pack invalid; warnings are what the pack itself says is wrong with
    the evidence it was made from (a stored file that no longer matched its upload)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: int = 0  # files whose SHA-256 and size matched the manifest
    signature_valid: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    pack: str | os.PathLike[str] | IO[bytes], public_key_pem: str | None = None
) -> VerifyResult:
    """Check a pack against its signed manifest: the signature (with `public_key_pem`, or
    the installation's key), every file's SHA-256 and size, nothing added or left out, and
    each evidence file against the hash recorded at upload.

    Anything wrong with the pack is a problem in the result; a public key that is not an
    Ed25519 key in PEM is a ValueError.
    """
    key = load_public_key(public_key_pem) if public_key_pem else signing_key().public_key()
    try:
        zf = zipfile.ZipFile(pack)
    except DAMAGED:
        return VerifyResult(problems=["Not a ZIP file, or a damaged one: not an audit pack."])
    except OSError as exc:
        return VerifyResult(problems=[f"Cannot read the pack: {exc.strerror or exc}."])
    with zf:
        return _verify(zf, key)


def _verify(zf: zipfile.ZipFile, key: Ed25519PublicKey) -> VerifyResult:
    result = VerifyResult()
    names = zf.namelist()
    # A second entry of the same name hides behind the first in most unzip tools.
    for name, n in sorted(Counter(names).items()):
        if n > 1:
            result.problems.append(f"{name}: in the pack {n} times.")
    absent = [name for name in (MANIFEST, SIGNATURE) if name not in names]
    if absent:
        result.problems.append(
            f"No {' or '.join(absent)}: not an audit pack, or not a complete one."
        )
        return result
    try:
        data, signature = zf.read(MANIFEST), zf.read(SIGNATURE)
    except DAMAGED as exc:
        result.problems.append(f"The manifest cannot be read: {exc}.")
        return result
    try:
        key.verify(base64.b64decode(signature.strip(), validate=True), data)
        result.signature_valid = True
    except (InvalidSignature, ValueError):  # ValueError: not base64
        result.problems.append(
            "manifest.sig: the signature does not verify with this public key: manifest.json "
            "was changed after signing, or the pack was signed with another key."
        )
    listed = _listed_files(data)
    if listed is None:
        result.problems.append(f"manifest.json: not a manifest of {FORMAT}.")
        return result
    hashes = _check_files(zf, listed, result)
    for name in sorted(set(names) - set(listed) - {MANIFEST, SIGNATURE}):
        result.problems.append(f"{name}: in the pack but not in the manifest.")
    if EVIDENCE_INDEX in hashes:
        _check_evidence(zf, hashes, result)
    return result


def _listed_files(data: bytes) -> dict[str, tuple[str, int]] | None:
    """The manifest's files as {name: (sha256, size)}, or None if it is not a manifest."""
    try:
        manifest = json.loads(data)
        if manifest["format"] != FORMAT:
            return None
        return {
            str(name): (str(entry["sha256"]), int(entry["size"]))
            for name, entry in manifest["files"].items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _check_files(
    zf: zipfile.ZipFile, listed: dict[str, tuple[str, int]], result: VerifyResult
) -> dict[str, str]:
    """Hash every listed file; the SHA-256 of each one that could be read."""
    present = set(zf.namelist())
    hashes: dict[str, str] = {}
    for name, (sha256, size) in sorted(listed.items()):
        if name not in present:
            result.problems.append(f"{name}: in the manifest but not in the pack.")
            continue
        digest, length = hashlib.sha256(), 0
        try:
            with zf.open(name) as entry:
                while chunk := entry.read(READ_BYTES):
                    digest.update(chunk)
                    length += len(chunk)
        except DAMAGED as exc:
            result.problems.append(f"{name}: cannot be read ({exc}).")
            continue
        hashes[name] = digest.hexdigest()
        if (hashes[name], length) != (sha256, size):
            result.problems.append(
                f"{name}: not the file the manifest lists (SHA-256 {hashes[name]}, "
                f"{length} bytes; the manifest says {sha256}, {size} bytes)."
            )
        else:
            result.files += 1
    return hashes


def _check_evidence(zf: zipfile.ZipFile, hashes: dict[str, str], result: VerifyResult) -> None:
    """Each packed evidence file against the SHA-256 recorded when it was uploaded."""
    try:
        rows = [
            (row["id"], row["path"], row["integrity"], row["sha256"], row["stored_sha256"])
            for row in json.loads(zf.read(EVIDENCE_INDEX))["evidence"]
        ]
    except (ValueError, TypeError, KeyError):
        result.problems.append(f"{EVIDENCE_INDEX}: not an evidence index.")
        return
    for id_, path, integrity, sha256, stored_sha256 in rows:
        label = f"evidence {id_}"
        if integrity == MISSING:
            result.warnings.append(
                f"{label}: its stored file could not be read when the pack was made."
            )
            continue
        if not path:
            continue  # a link, or a purged file: nothing was packed
        if str(path) not in hashes:
            result.problems.append(f"{label}: its file {path} is not in the pack.")
            continue
        expected = sha256
        if integrity == MISMATCH:
            result.warnings.append(
                f"{label}: when the pack was made, the stored file no longer matched the "
                f"SHA-256 recorded at upload ({sha256}); it was packed as found."
            )
            expected = stored_sha256
        if hashes[str(path)] != expected:
            result.problems.append(
                f"{path}: does not match the SHA-256 that {EVIDENCE_INDEX} records for "
                f"{label} ({expected})."
            )
