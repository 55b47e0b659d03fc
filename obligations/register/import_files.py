"""Reading an import file (CSV or XLSX) within limits, and matching its columns."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from pathlib import PurePath

import openpyxl
from django.conf import settings
from openpyxl.utils import get_column_letter

from obligations.register.states import CycleStatus

# What one import may hold; the byte limit is settings.IMPORT_MAX_BYTES (README, "Importing").
MAX_ROWS = 5_000


MAX_COLUMNS = 50


MAX_CELL_CHARS = 10_000


UNPACKED_FACTOR = 10  # a workbook is a zip: it may unpack to this many times the byte limit


# Each column and the header names it is known by, compared after `_normalise`.
COLUMNS: dict[str, tuple[str, ...]] = {
    "external_ref": ("external reference", "external ref", "reference", "ref", "id"),
    "service": ("service", "service name"),
    "duty": ("duty", "duty code", "code"),
    "owner": ("owner", "owner email"),
    "status": ("status",),
    "due": ("due", "due date"),
    "evidence": ("evidence", "evidence link", "evidence url"),
    "approver": ("approver", "approver email"),
    "notes": ("notes", "note"),
}


COLUMN_LABELS = {
    "external_ref": "external reference",
    "service": "service",
    "duty": "duty code",
    "owner": "owner e-mail",
    "status": "status",
    "due": "due date",
    "evidence": "evidence link",
    "approver": "approver e-mail",
    "notes": "notes",
}


REQUIRED = ("service", "duty", "external_ref")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported: its format, encoding, columns or size."""


def normalise(text: str) -> str:
    """Header and status names compare lower-case, "_" as a space, "e-mail" as "email"."""
    return " ".join(text.lower().replace("_", " ").replace("e-mail", "email").split())


def column_label(status: str) -> str:
    return str(CycleStatus(status).label).lower()


STATUS_NAMES = {
    normalise(name): CycleStatus(value)
    for value, label in CycleStatus.choices
    for name in (value, str(label))
}


Cell = str | dt.date


@dataclass(frozen=True)
class Table:
    """A file's rows (numbered as the spreadsheet shows them: the header is row 1) and
    where each known column is."""

    columns: dict[str, int]
    ignored_columns: list[str]
    rows: list[tuple[int, list[Cell]]]


def too_large() -> ImportFileError:
    """The refusal of a file over the size limit, wherever it is noticed."""
    return ImportFileError(
        f"The file is larger than {settings.IMPORT_MAX_BYTES:,} bytes, the limit for an "
        "import; split it into smaller files."
    )


def read_table(filename: str, data: bytes) -> Table:
    """The file's table, or ImportFileError saying what is wrong with the file as a whole.

    Each limit (bytes, rows, columns, cell length) is checked while the file is read, and
    reading stops at the first one passed: a few kilobytes of workbook can declare millions
    of rows, so blank rows count too.
    """
    if not data:
        raise ImportFileError("The file is empty.")
    if len(data) > settings.IMPORT_MAX_BYTES:
        raise too_large()
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".csv":
        lines = _csv_lines(data)
    elif suffix == ".xlsx":
        lines = _xlsx_lines(data)
    else:
        raise ImportFileError("Upload a .csv or .xlsx file (save an .xls or .ods file as .xlsx).")
    with closing(lines):
        header = next(lines, None)
        if header is None:
            raise ImportFileError("The file is empty.")
        columns, ignored = _map_columns([cell_text(h) for h in _within_cell_limit(1, header)])
        rows: list[tuple[int, list[Cell]]] = []
        for number, cells in enumerate(lines, start=2):
            if number > MAX_ROWS + 1:
                raise ImportFileError(
                    f"The file has more than {MAX_ROWS:,} rows below its header (blank rows "
                    f"count too); split it into files of at most {MAX_ROWS:,} rows."
                )
            if any(_within_cell_limit(number, cells)):
                rows.append((number, cells))
    if not rows:
        raise ImportFileError("The file has a header row but no rows to import.")
    return Table(columns=columns, ignored_columns=ignored, rows=rows)


def _within_cell_limit(number: int, cells: list[Cell]) -> list[Cell]:
    for position, cell in enumerate(cells, start=1):
        if isinstance(cell, str) and len(cell) > MAX_CELL_CHARS:
            raise _cell_too_long(f"row {number}, column {get_column_letter(position)}")
    return cells


def _cell_too_long(where: str) -> ImportFileError:
    return ImportFileError(
        f"The cell at {where} is longer than {MAX_CELL_CHARS:,} characters, the limit for a cell."
    )


def _too_wide(number: int) -> ImportFileError:
    return ImportFileError(
        f"Row {number} has cells beyond column {get_column_letter(MAX_COLUMNS)}: the file may "
        f"have at most {MAX_COLUMNS} columns."
    )


def _csv_lines(data: bytes) -> Generator[list[Cell]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(
            "The file is not UTF-8 text: save it as “CSV UTF-8” or as an .xlsx workbook."
        ) from None
    number = 0
    try:
        for number, record in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
            cells: list[Cell] = [value.strip() for value in record]
            if any(cells[MAX_COLUMNS:]):
                raise _too_wide(number)
            yield cells[:MAX_COLUMNS]
    except csv.Error as exc:
        # The csv module's own cap on a field (131,072 characters) is past ours: the same fault.
        if "field larger than field limit" in str(exc):
            raise _cell_too_long(f"row {number + 1}") from None
        raise ImportFileError(f"The file is not a readable CSV file ({exc}).") from None


def _xlsx_lines(data: bytes) -> Generator[list[Cell]]:
    _check_unpacked_size(data)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            # Rows as written, not padded to the size the sheet declares (which can be huge).
            sheet.reset_dimensions()  # type: ignore[union-attr]
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                beyond = values[MAX_COLUMNS:]
                if beyond.count(None) != len(beyond):  # counted in C: rows can be wide
                    raise _too_wide(number)
                yield [_xlsx_cell(value) for value in values[:MAX_COLUMNS]]
        finally:
            workbook.close()
    except ImportFileError:
        raise
    # A malformed workbook surfaces from the zip, XML and openpyxl layers as many exception
    # types; to the person uploading it they all mean the same thing.
    except Exception as exc:
        raise ImportFileError(
            "The file is not a readable .xlsx workbook (the first sheet is imported)."
        ) from exc


def _check_unpacked_size(data: bytes) -> None:
    """A workbook is a zip, and openpyxl reads its shared strings whole: refuse one that
    unpacks past a multiple of the file limit before anything is unpacked (zipfile stops
    each part at its declared size)."""
    limit = settings.IMPORT_MAX_BYTES * UNPACKED_FACTOR
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(part.file_size for part in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        return  # openpyxl says it is not a workbook
    if unpacked > limit:
        raise ImportFileError(
            f"The workbook unpacks to {unpacked:,} bytes; the limit is {limit:,} bytes "
            f"({UNPACKED_FACTOR} times the {settings.IMPORT_MAX_BYTES:,}-byte file limit)."
        )


def _xlsx_cell(value: object) -> Cell:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a reference typed as a number: 7, not 7.0
    return str(value).strip()


def cell_text(value: Cell) -> str:
    return value.isoformat() if isinstance(value, dt.date) else value


def _map_columns(headers: list[str]) -> tuple[dict[str, int], list[str]]:
    by_alias = {alias: name for name, aliases in COLUMNS.items() for alias in aliases}
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for position, header in enumerate(headers):
        name = by_alias.get(normalise(header))
        if name is None:
            if header.strip():
                ignored.append(header.strip())
        elif name in columns:
            raise ImportFileError(
                f"Two columns give the {COLUMN_LABELS[name]}: "
                f"“{headers[columns[name]]}” and “{header}”."
            )
        else:
            columns[name] = position
    missing = [COLUMN_LABELS[name] for name in REQUIRED if name not in columns]
    if missing:
        raise ImportFileError(
            f"The first row must name the columns; missing: {', '.join(missing)}."
        )
    return columns, ignored
