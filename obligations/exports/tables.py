"""The obligations register as files. CSV and JSON stream as they are read so that memory
stays flat however many rows there are; XLSX is written by openpyxl in write-only mode to a
temporary file. One list of columns serves all three, the API's list and the audit pack."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import IO, Any

from django.db.models import QuerySet
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter

from obligations.catalogue.commencement import in_force_known
from obligations.register.models import Obligation
from obligations.register.states import CycleStatus, is_overdue

# (key, heading): the register's columns, in order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "Obligation ID"),
    ("organisation", "Organisation"),
    ("provider", "Provider"),
    ("service", "Service"),
    ("duty_code", "Duty code"),
    ("section", "Section"),
    ("title", "Duty"),
    ("applicable", "Applicable"),
    ("in_force", "In force"),
    ("in_force_from", "In force from"),
    ("status", "Status"),
    ("owner", "Owner"),
    ("due", "Due"),
    ("overdue", "Overdue"),
    ("evidence_count", "Evidence count"),
    ("last_change", "Last change"),
)


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP's list).
FORMULA_START = frozenset("=+-@\t\r")


STATUS_LABELS = dict(CycleStatus.choices)


# Rows fetched from the database at a time while streaming.
CHUNK = 2000


# Rows of a streamed export per piece of the response: what each piece costs on its way out
# (encoding it, the handler's iteration) is paid once for many rows, not once per row.
PIECE_ROWS = 500


def register_row(values: dict[str, Any], today: dt.date) -> dict[str, Any]:
    """One obligation of a `selectors.register` queryset as plain values."""
    due, effective = values["r_due"], values["duty__effective_from"]
    status = values["r_status"] or ""
    last_change = values["r_last_change"]
    return {
        "id": values["id"],
        "organisation": values["provider__organisation__name"],
        "provider": values["provider__name"],
        "service": values["service__name"] or "",
        "duty_code": values["duty__code"],
        "section": values["duty__section"],
        "title": values["duty__title"],
        "applicable": bool(values["r_applicable"]),
        # None (an empty cell) where nobody knows: unverified, with no in-force day.
        "in_force": in_force_known(
            effective,
            today,
            in_force_from=values["duty__in_force_from"],
            verified=values["duty__verified"],
        ),
        "in_force_from": effective.isoformat() if effective else None,
        "status": status,
        "owner": values["r_owner"] or "",
        "due": due.isoformat() if due else None,
        "overdue": bool(values["r_applicable"]) and is_overdue(status, due, today),
        "evidence_count": values["r_evidence_count"],
        "last_change": last_change.isoformat() if last_change else None,
    }


REGISTER_VALUES = (
    "id",
    "provider__organisation__name",
    "provider__name",
    "service__name",
    "duty__code",
    "duty__section",
    "duty__title",
    "duty__effective_from",
    "duty__in_force_from",
    "duty__verified",
    "r_applicable",
    "r_status",
    "r_owner",
    "r_due",
    "r_evidence_count",
    "r_last_change",
)


def register_rows(qs: QuerySet[Obligation], today: dt.date) -> Iterator[dict[str, Any]]:
    """Rows of an annotated register queryset, read in chunks (a server-side cursor on
    PostgreSQL), so that 100,000 rows never sit in memory at once."""
    for values in qs.values(*REGISTER_VALUES).iterator(chunk_size=CHUNK):
        yield register_row(values, today)


def safe_text(value: str) -> str:
    """Text that a spreadsheet shows as text rather than running as a formula."""
    return "'" + value if value[:1] in FORMULA_START else value


def safe_cell(value: Any) -> Any:
    return safe_text(value) if isinstance(value, str) else value


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def csv_cells(row: dict[str, Any]) -> list[Any]:
    """A `register_row` as cells, in COLUMNS' order: yes/no for its booleans (empty for an
    in-force that is not known), the label of its status, empty for no value, and text kept
    from running as a formula. Spelled out column by column, as it runs for every row of an
    export (an ISO date or an integer cannot start a formula)."""
    status = row["status"]
    due, last_change = row["due"], row["last_change"]
    return [
        row["id"],
        safe_text(row["organisation"]),
        safe_text(row["provider"]),
        safe_text(row["service"]),
        safe_text(row["duty_code"]),
        safe_text(row["section"]),
        safe_text(row["title"]),
        "yes" if row["applicable"] else "no",
        _yes_no(row["in_force"]),
        row["in_force_from"] or "",
        safe_text(STATUS_LABELS.get(status, status)),
        safe_text(row["owner"]),
        "" if due is None else due,
        "yes" if row["overdue"] else "no",
        row["evidence_count"],
        "" if last_change is None else last_change,
    ]


def csv_pieces(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """A CSV file of `header` and `rows` (cells ready to write), PIECE_ROWS rows to a
    piece."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # so that Excel reads the file as UTF-8
    writer.writerow(header)
    remaining = iter(rows)
    while True:
        writer.writerows(islice(remaining, PIECE_ROWS))
        piece = buffer.getvalue()
        if not piece:
            return
        yield piece
        buffer.seek(0)
        buffer.truncate()


def stream_csv(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    return csv_pieces([heading for _, heading in COLUMNS], map(csv_cells, rows))


def stream_json(rows: Iterable[dict[str, Any]], meta: dict[str, Any]) -> Iterator[str]:
    """One JSON object, `meta` then "obligations": [...], PIECE_ROWS rows to a piece."""
    head = json.dumps(meta)[:-1]
    yield head + (', "obligations": [' if meta else '"obligations": [')
    remaining = iter(rows)
    separator = ""
    while piece := list(islice(remaining, PIECE_ROWS)):
        yield separator + ",".join("\n" + json.dumps(row) for row in piece)
        separator = ","
    yield "\n]}\n"


# Columns a spreadsheet should sort and filter as dates, not text, and how it shows them:
# the UK style (17 Mar 2025), and the last change in London's time (a cell has no zone).
DATE_FORMAT, DATETIME_FORMAT = "DD MMM YYYY", "DD MMM YYYY HH:MM"
COLUMN_AT = {key: index for index, (key, _) in enumerate(COLUMNS)}


def xlsx_cells(sheet: Any, row: dict[str, Any]) -> list[Any]:
    """`csv_cells`, with the dates as date cells."""
    cells = csv_cells(row)
    for key in ("in_force_from", "due"):
        if row[key]:
            cells[COLUMN_AT[key]] = dated(sheet, dt.date.fromisoformat(row[key]), DATE_FORMAT)
    if row["last_change"]:
        at = timezone.localtime(dt.datetime.fromisoformat(row["last_change"]))
        cells[COLUMN_AT["last_change"]] = dated(sheet, at.replace(tzinfo=None), DATETIME_FORMAT)
    return cells


def dated(sheet: Any, value: dt.date, number_format: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    cell.number_format = number_format
    return cell


def write_xlsx(rows: Iterable[dict[str, Any]], out: IO[bytes]) -> None:
    """The register as a worksheet: the header row frozen and filtering every column, the
    dates as dates."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Obligations")
    sheet.freeze_panes = "A2"
    sheet.append([heading for _, heading in COLUMNS])
    count = 0
    for row in rows:
        sheet.append(xlsx_cells(sheet, row))
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{count + 1}"
    workbook.save(out)


def xlsx_file(rows: Iterable[dict[str, Any]]) -> IO[bytes]:
    """The workbook in a temporary file (spilled to disk past 10 MB), rewound for reading."""
    out = tempfile.SpooledTemporaryFile(max_size=10 * 1024 * 1024)  # noqa: SIM115
    write_xlsx(rows, out)
    out.seek(0)
    return out
