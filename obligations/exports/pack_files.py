"""The audit pack's archive writer and its history files."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

from django.contrib.admin.utils import get_fields_from_path
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

from obligations.exports.tables import CHUNK, csv_pieces, safe_cell
from obligations.register.models import Event, Evidence, Obligation

# Evidence files are copied in pieces of this size; the index spills to disk past SPOOL.
READ_BYTES = 1024 * 1024


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


class Pack:
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


def write_history(pack: Pack, ids: QuerySet[Any], end: dt.datetime | None) -> None:
    """The events and the field history of the obligations and their evidence (a query each)."""
    events = Event.objects.filter(obligation__in=ids).order_by("at", "id")
    obligation_history = (
        _history(Obligation).filter(id__in=ids).order_by("history_date", "history_id")
    )
    evidence_history = (
        _history(Evidence).filter(cycle__obligation__in=ids).order_by("history_date", "history_id")
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
        rows = qs.values_list(*lookups).iterator(chunk_size=CHUNK)
        pack.text(name, csv_pieces(header, _history_cells(qs.model, lookups, rows)))


# simple_history's codes, in words: "+" and "-" would read as formulas in a spreadsheet.
HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}


def _yes_no(value: bool | None) -> str:
    return "" if value is None else "yes" if value else "no"


def _moment(value: dt.datetime | None) -> str:
    return "" if value is None else value.isoformat()


def _history_type(value: str | None) -> str | None:
    return safe_cell(HISTORY_TYPES.get(value, value) if value else value)


def history_converter(model: type[Model], lookup: str) -> Callable[[Any], Any] | None:
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
        return safe_cell
    raise TypeError(f"no cell format for {lookup} ({type(column).__name__})")


def _history_cells(
    model: type[Model], lookups: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Iterator[list[Any]]:
    """Each row's values as cells."""
    converters = [(i, history_converter(model, lookup)) for i, lookup in enumerate(lookups)]
    todo = [(i, convert) for i, convert in converters if convert is not None]
    for row in rows:
        cells = list(row)
        for i, convert in todo:
            cells[i] = convert(cells[i])
        yield cells
