"""Exports an auditor can trust: CSV, JSON and XLSX with the same filters as the list, safe to
open in a spreadsheet, streamed; and the register as it stood on a past date."""

import csv
import datetime as dt
import io
import json

import pytest
from openpyxl import load_workbook

from obligations.access.models import Role
from obligations.exports.tables import PIECE_ROWS, csv_pieces
from obligations.register.actions import assign_owner, set_due_date
from obligations.register.evidence import add_evidence_link
from obligations.register.models import Obligation
from obligations.register.states import EventSource
from obligations.register.workflow import do_approve, do_start, do_submit_for_review
from tests.conftest import NOW, TODAY
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member
from tests.helpers import client_for

SYSTEM = EventSource.ADMIN
EVIL = '=HYPERLINK("http://evil.test","click")'


@pytest.fixture
def team(catalogue):  # type: ignore[no-untyped-def]
    org = OrganisationFactory(name="Ours")
    provider = ProviderFactory(organisation=org, name="+Northwind")
    return {
        "service": applied_service(provider=provider, name=EVIL),
        "provider": provider,
        "casey": member(org, username="@casey"),
        "rita": member(org, username="rita"),
        "audrey": member(org, role=Role.AUDITOR, username="audrey"),
        "other": applied_service(provider=ProviderFactory(organisation=OrganisationFactory())),
    }


def csv_rows(response):  # type: ignore[no-untyped-def]
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_export_streams_the_filtered_register_with_formulas_escaped(team):
    ob = team["service"].obligations.get(duty__code="U2U-RECORDS")
    assign_owner(actor=team["casey"], obligation=ob, owner=team["casey"], source=SYSTEM)
    client = client_for(team["audrey"], read_only=True)
    response = client.get("/api/v1/obligations/export/csv/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="obligations-2026-11-24.csv"' in response["Content-Disposition"]
    rows = csv_rows(response)
    ours = Obligation.objects.filter(provider=team["provider"]).count()
    assert len(rows) == ours  # not the other organisation's
    row = next(r for r in rows if r["Duty code"] == "U2U-RECORDS")
    assert row["Service"] == "'" + EVIL
    assert row["Provider"] == "'+Northwind"
    assert row["Owner"] == "'@casey"
    assert row["Status"] == "Not started"
    filtered = csv_rows(client.get("/api/v1/obligations/export/csv/", {"owner": team["casey"].pk}))
    assert [r["Obligation ID"] for r in filtered] == [str(ob.pk)]


def test_a_long_csv_streams_in_pieces_that_join_into_every_row():
    rows = [[n, f"row {n}"] for n in range(2 * PIECE_ROWS + 1)]
    pieces = list(csv_pieces(["n", "text"], rows))
    assert len(pieces) == 3  # memory holds a piece, never the whole file
    written = list(csv.reader(io.StringIO("".join(pieces).removeprefix("\ufeff"))))
    assert written == [["n", "text"], *([str(n), text] for n, text in rows)]


def test_the_json_export_is_one_document_with_the_same_rows_as_the_list(team):
    client = client_for(team["audrey"], read_only=True)
    response = client.get("/api/v1/obligations/export/json/", {"status": "not_started"})
    assert response.streaming
    body = json.loads(b"".join(response.streaming_content))
    assert body["as_of"] is None
    assert body["filters"] == {"status": "not_started"}
    listed = client.get("/api/v1/obligations/", {"status": "not_started", "page_size": 500})
    list_rows = [
        {k: v for k, v in row.items() if not k.endswith("_id")} for row in listed.json()["results"]
    ]
    assert sorted(body["obligations"], key=lambda r: r["id"]) == list_rows


def test_the_xlsx_export_opens_with_text_not_formulas(team):
    response = client_for(team["audrey"]).get("/api/v1/obligations/export/xlsx/")
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = workbook["Obligations"]
    header = [c.value for c in sheet[1]]
    assert header[:5] == ["Obligation ID", "Organisation", "Provider", "Service", "Duty code"]
    service_cell = next(c for c in sheet["D"][1:] if c.value)
    assert service_cell.data_type != "f"  # text, never a formula
    assert service_cell.value == "'" + EVIL
    assert sheet.max_row == 1 + Obligation.objects.filter(provider=team["provider"]).count()


def test_the_xlsx_export_has_dates_a_frozen_header_and_filters(team):
    """What a person opening it in a spreadsheet expects: dates they can sort and filter by
    date, shown as 17 Mar 2025; the header stays in view; every column can be filtered."""
    response = client_for(team["audrey"]).get("/api/v1/obligations/export/xlsx/")
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)))["Obligations"]
    header = [c.value for c in sheet[1]]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:P{sheet.max_row}"
    due = [row[header.index("Due")] for row in sheet.iter_rows(min_row=2) if row[0].value]
    dated = [cell for cell in due if cell.value is not None]
    assert dated and all(cell.is_date for cell in dated)
    assert {cell.number_format for cell in dated} == {"DD MMM YYYY"}
    csv_rows = list(csv.reader(io.StringIO(
        b"".join(client_for(team["audrey"]).get("/api/v1/obligations/export/csv/")
                 .streaming_content).decode("utf-8-sig")
    )))  # fmt: skip
    by_id = {row[0]: row for row in csv_rows[1:]}
    for row in sheet.iter_rows(min_row=2):
        due_cell = row[header.index("Due")]
        expected = by_id[str(row[0].value)][header.index("Due")]
        assert (due_cell.value.date().isoformat() if due_cell.value else "") == expected
        changed = row[header.index("Last change")]
        assert changed.value is None or changed.number_format == "DD MMM YYYY HH:MM"


def test_an_export_with_a_bad_filter_is_a_400_not_a_file(team):
    response = client_for(team["audrey"]).get("/api/v1/obligations/export/csv/", {"ovrdue": "1"})
    assert response.status_code == 400
    assert "ovrdue" in response.json()["fields"]
    assert client_for(team["audrey"]).get("/api/v1/obligations/export/pdf/").status_code == 404


def test_the_register_as_it_stood_on_a_past_date(team, clock):
    casey, rita = team["casey"], team["rita"]
    ob = team["service"].obligations.get(duty__code="U2U-RECORDS")
    first_due = ob.current_cycle.due_date
    # 24 Nov: as created. 26 Nov: owned and started. 28 Nov: due date moved and submitted.
    # 30 Nov: approved by someone else (met).
    clock.move_to(NOW + dt.timedelta(days=2))
    assign_owner(actor=casey, obligation=ob, owner=casey, source=SYSTEM)
    cycle = do_start(actor=casey, cycle=ob.current_cycle, source=SYSTEM)
    clock.move_to(NOW + dt.timedelta(days=4))
    new_due = TODAY + dt.timedelta(days=90)
    set_due_date(actor=casey, cycle=cycle, due=new_due, reason="Ofcom", source=SYSTEM)
    add_evidence_link(
        actor=casey, cycle=cycle, url="https://wiki.test/r", title="Records", source=SYSTEM
    )
    cycle = do_submit_for_review(actor=casey, cycle=cycle, source=SYSTEM)
    clock.move_to(NOW + dt.timedelta(days=6))
    do_approve(actor=rita, cycle=cycle, source=SYSTEM)
    clock.move_to(NOW + dt.timedelta(days=7))
    client = client_for(team["audrey"], read_only=True)

    def row_on(day):  # type: ignore[no-untyped-def]
        response = client.get(f"/api/v1/obligations/{ob.pk}/", {"as_of": day.isoformat()})
        assert response.status_code == 200, response.json()
        return response.json()

    day = TODAY
    assert (row_on(day)["status"], row_on(day)["owner"], row_on(day)["due"]) == (
        "not_started",
        "",
        first_due.isoformat() if first_due else None,
    )
    assert row_on(day)["evidence_count"] == 0
    day = TODAY + dt.timedelta(days=2)
    assert (row_on(day)["status"], row_on(day)["owner"]) == ("in_progress", "@casey")
    day = TODAY + dt.timedelta(days=4)
    assert (row_on(day)["status"], row_on(day)["due"]) == (
        "ready_for_review",
        new_due.isoformat(),
    )
    assert row_on(day)["evidence_count"] == 1
    assert row_on(TODAY + dt.timedelta(days=6))["status"] == "met"
    # A filter applies to the past register, not today's.
    past = client.get(
        "/api/v1/obligations/",
        {"as_of": (TODAY + dt.timedelta(days=2)).isoformat(), "status": "in_progress"},
    ).json()["results"]
    assert [r["id"] for r in past] == [ob.pk]
    # The export of a past date says so and holds the same row.
    exported = csv_rows(client.get("/api/v1/obligations/export/csv/", {"as_of": TODAY.isoformat()}))
    mine = next(r for r in exported if r["Obligation ID"] == str(ob.pk))
    assert mine["Status"] == "Not started"
    # Before the obligation existed, it is not in the register at all.
    before = client.get("/api/v1/obligations/", {"as_of": "2026-01-01"}).json()["results"]
    assert before == []
