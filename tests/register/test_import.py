"""Importing an existing register from CSV and XLSX: validation by row, all-or-nothing,
idempotent re-imports, writes through the services with source "import"."""

import csv
import datetime as dt
import io
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from obligations.access.models import Organisation, Role
from obligations.access.users import get_system_user
from obligations.notices.models import NoticeEvent
from obligations.register.actions import update_obligation_details
from obligations.register.evidence import add_evidence_link
from obligations.register.import_files import MAX_ROWS, ImportFileError, read_table
from obligations.register.models import Event, Evidence, Obligation, ObligationCycle
from obligations.register.states import CycleStatus, EventKind, EventSource
from obligations.register.workflow import do_approve, do_start, do_submit_for_review
from obligations.reminders.models import Reminder, ReminderKind
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member

SAMPLE = Path(settings.BASE_DIR) / "fixtures" / "sample-register.csv"
DEMO_ORG = "Northwind Media Group"
HEADER = ["External ref", "Service", "Duty code", "Owner email", "Status", "Due date"]
HEADER += ["Evidence link", "Approver email", "Notes"]
DOC = "https://docs.example.test/"


def import_file(path: Path, *args: str, organisation: str = DEMO_ORG) -> str:
    out = io.StringIO()
    try:
        call_command(
            "import_register", str(path), "--organisation", organisation, *args, stdout=out
        )
    except CommandError as exc:
        raise AssertionError(f"{exc}\n{out.getvalue()}") from exc
    return out.getvalue()


def refused_import(path: Path, *args: str) -> tuple[str, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("import_register", str(path), "--organisation", "Ours", *args, stdout=out)
    return out.getvalue(), str(raised.value)


def csv_bytes(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    return buffer.getvalue().encode()


def write_csv(tmp_path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    path = tmp_path / "register.csv"
    path.write_bytes(csv_bytes(rows, header))
    return path


def row(ref: str, duty: str, status: str = "", **cells: str) -> list[str]:
    """A row for `HEADER` on the service "Chat"."""
    return [
        ref,
        cells.get("service", "Chat"),
        duty,
        cells.get("owner", ""),
        status,
        cells.get("due", ""),
        cells.get("evidence", ""),
        cells.get("approver", ""),
        cells.get("notes", ""),
    ]


def counts() -> tuple[int, int, int, int]:
    return (
        Event.objects.count(),
        Evidence.objects.count(),
        Obligation.history.count(),  # type: ignore[attr-defined]
        Reminder.objects.count(),
    )


def last_ids() -> tuple[int, int, int]:
    """Where the event, notice event and field history tables end, to see what an import adds."""
    return (
        Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
        NoticeEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
        Obligation.history.order_by("-pk").values_list("pk", flat=True).first() or 0,  # type: ignore[attr-defined]
    )


def actors_since(marks: tuple[int, int, int]) -> set[int]:
    """Everyone named as having acted in the event rows and field history written since."""
    event, notice, history = marks
    return (
        set(Event.objects.filter(pk__gt=event).values_list("actor", flat=True))
        | set(NoticeEvent.objects.filter(pk__gt=notice).values_list("actor", flat=True))
        | set(
            Obligation.history.filter(pk__gt=history).values_list("history_user", flat=True)  # type: ignore[attr-defined]
        )
    )


def review_requests(cycle: ObligationCycle) -> set[str]:
    """Who was asked to review the cycle (the outbox rows the submission wrote)."""
    asked = Reminder.objects.filter(cycle=cycle, kind=ReminderKind.REVIEW_REQUESTED)
    return set(asked.values_list("recipient__username", flat=True))


@pytest.fixture(autouse=True)
def fast_passwords(settings):  # type: ignore[no-untyped-def]
    """No test here signs in with a password; hashing them slowly only costs time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo(catalogue):  # type: ignore[no-untyped-def]
    call_command("load_demo", stdout=io.StringIO())
    return Organisation.objects.get(name=DEMO_ORG)


@pytest.fixture
def ours(catalogue):  # type: ignore[no-untyped-def]
    """A small register: one user-to-user service, two compliance members and an auditor;
    and a member of another organisation."""
    org = OrganisationFactory(name="Ours")
    service = applied_service(provider=ProviderFactory(organisation=org), name="Chat")
    return {
        "org": org,
        "service": service,
        "owner": member(org, username="casey"),
        "reviewer": member(org, username="robin"),
        "auditor": member(org, role=Role.AUDITOR, username="avery"),
        "stranger": member(OrganisationFactory(name="Theirs"), username="sam"),
    }


def obligation(ref_or_code: str) -> Obligation:
    found = Obligation.objects.select_related("current_cycle", "owner")
    return found.filter(external_ref=ref_or_code).first() or found.get(duty__code=ref_or_code)


# --- The command ------------------------------------------------------------------------


def test_the_sample_register_imports_cleanly_into_the_demo_data_once(demo):
    system = get_system_user()
    before = counts()
    dry_run = import_file(SAMPLE, "--dry-run")
    assert counts() == before
    assert dry_run.count(": would update") == 11 and "Nothing was written" in dry_run

    marks = last_ids()
    output = import_file(SAMPLE)
    assert "11 row(s) updated, 0 unchanged, 0 refused" in output
    assert "Ignored columns: Last reviewed" in output
    # The dry run said what the import then did, row by row.
    assert dry_run.replace("would update", "updated").splitlines()[:-1] == output.splitlines()[:-1]

    # The command acts as the system user, who approves nothing: "met" with an approver
    # lands at ready for review, and the approver is asked to review it in the tracker.
    met = obligation("REG-001")
    assert met.current_cycle.status == CycleStatus.READY_FOR_REVIEW
    assert met.current_cycle.submitted_by == system and met.current_cycle.reviewer is None
    assert "reviewer" in review_requests(met.current_cycle)
    assert (
        "row 2 REG-001 (Northwind Social / U2U-ILLEGAL-RA): updated: external reference none → "
        "REG-001; notes updated; evidence link added; status not started → in progress → ready "
        "for review; lands at ready for review: waiting for reviewer@northwind.example to "
        "approve in the tracker"
    ) in output
    # "Met" without an approver waits for any reviewer.
    assert obligation("REG-005").current_cycle.status == CycleStatus.READY_FOR_REVIEW
    assert (
        "row 6 REG-005 (Northwind Chat / U2U-ILLEGAL-RA): updated: external reference none → "
        "REG-005; notes updated; owner compliance → reviewer; evidence link added; status not "
        "started → in progress → ready for review; lands at ready for review: waiting for a "
        "reviewer to approve in the tracker"
    ) in output
    # Northwind Forum has no assessment recorded: the report says the approver cannot yet.
    assert obligation("REG-009").current_cycle.status == CycleStatus.READY_FOR_REVIEW
    assert (
        "waiting for a reviewer to approve in the tracker; reviewer@northwind.example cannot "
        "approve it: It cannot be met without its risk assessment"
    ) in output
    caa = obligation("REG-003")
    assert caa.owner.email == "reviewer@northwind.example"
    assert caa.current_cycle.due_date == dt.date(2026, 12, 15)  # given as 15/12/2026
    assert caa.notes.startswith("Children's access assessment")

    events = Event.objects.filter(pk__gt=marks[0])
    assert events.count() > 20
    assert set(events.values_list("source", flat=True)) == {EventSource.IMPORT}
    assert actors_since(marks) == {system.pk}
    assert not events.filter(to_status=CycleStatus.MET).exists()
    history = met.history.first()  # type: ignore[attr-defined]
    assert history.history_user == system
    assert history.history_change_reason.startswith("Imported from sample-register.csv row 2")

    # A second import of the same file changes nothing.
    before = counts()
    output = import_file(SAMPLE)
    assert counts() == before
    assert "0 row(s) updated, 11 unchanged, 0 refused" in output
    assert output.count(": unchanged") == 11


def test_bad_rows_are_reported_by_row_number_and_nothing_is_written(ours, tmp_path):
    other = obligation("U2U-RECORDS")
    update_obligation_details(
        actor=ours["owner"],
        obligation=other,
        external_ref="TAKEN",
        reason="test",
        source=EventSource.ADMIN,
    )
    path = write_csv(
        tmp_path,
        [
            row("OK-1", "U2U-ILLEGAL-RA", "in progress", owner="casey@example.test"),
            row("R3", "U2U-REPORTING", service="Nowhere"),
            row("R4", "NO-SUCH-DUTY"),
            row("R5", "SEARCH-ILLEGAL-RA"),
            row("R6", "U2U-COMPLAINTS", owner="sam@example.test"),
            row("R7", "U2U-COMPLAINTS", "done"),
            row("R8", "CAA", due="next week"),
            row("R9", "U2U-NCII-48H", evidence="ftp://files.example.test/x"),
            row("OK-1", "CSEA-NCA-REPORT"),
            row("TAKEN", "TOS-RIGHT-TO-SUE"),
            row("R12", "U2U-FOE-PRIVACY", "sent back"),
            row("R13", "FEES-PAY", "not applicable"),
            row("R14", "FEES-NOTIFY", due="31/02/2027"),
            row("R15", "U2U-ILLEGAL-RA"),
            row("R16", "U2U-ILLEGAL-SAFETY", "met", approver="avery@example.test"),
            row("R17\r\nR18", "U2U-RECORDS"),
            row("R18", "U2U-NCII-REPORT", due="2026-06-01"),
        ],
    )
    before = counts()
    output, error = refused_import(path)
    assert counts() == before
    assert "Nothing was written" in error and "16 refused" in error
    expected = {
        3: "unknown service “Nowhere”",
        4: "duty NO-SUCH-DUTY is not in the catalogue",
        5: "duty SEARCH-ILLEGAL-RA does not apply to Chat",
        6: "the owner e-mail sam@example.test is not a member of Ours",
        7: "unknown status “done”",
        8: "due date “next week” is not a date",
        9: "is not a valid http(s) URL",
        10: "external reference OK-1 is also on row 2",
        11: "external reference TAKEN is already used by U2U-RECORDS of Chat",
        12: "“sent back” cannot be imported",
        13: "“not applicable” needs a reason",
        14: "due date “31/02/2027” is not a date",
        15: "row 2 already imports Chat / U2U-ILLEGAL-RA",
        16: "has the role auditor; only these roles approve: organisation admin, compliance, "
        "manager",
        17: "the external reference is refused: Enter one line",
        18: "due date 2026-06-01 is refused: It cannot be due before the duty started to apply "
        "to it, on 29 Jun 2026",
    }
    lines = {int(line.split()[1]): line for line in output.splitlines() if line.startswith("row ")}
    assert "would update" in lines[2]
    for number, reason in expected.items():
        assert "refused" in lines[number] and reason in lines[number], (number, lines[number])


def test_import_good_rows_writes_only_the_good_rows(ours, tmp_path):
    path = write_csv(
        tmp_path,
        [
            row("OK-1", "U2U-ILLEGAL-RA", "in progress", owner="robin@example.test"),
            row("BAD", "U2U-REPORTING", owner="nobody@example.test"),
            row("OK-2", "CAA", due="2027-01-31", notes="Assessment booked."),
        ],
    )
    output = import_file(path, "--import-good-rows", organisation="Ours")
    assert "2 row(s) updated, 0 unchanged, 1 refused" in output
    good = obligation("OK-1")
    assert good.current_cycle.status == CycleStatus.IN_PROGRESS
    assert good.owner == ours["reviewer"]
    caa = obligation("OK-2")
    assert caa.current_cycle.due_date == dt.date(2027, 1, 31)
    assert caa.notes == "Assessment booked."
    assert obligation("U2U-REPORTING").external_ref == ""
    reason = Event.objects.get(obligation=caa, kind=EventKind.DUE_CHANGED).reason
    assert reason.endswith("Imported from register.csv row 4")


def test_a_due_date_outside_the_registers_range_is_refused_on_its_row(ours, tmp_path):
    """9999-12-31 once stopped every organisation's reminders: a dry run refuses it by row."""
    before_due = obligation("CAA").current_cycle.due_date
    path = write_csv(
        tmp_path,
        [
            row("A", "CAA", due="31/12/9999"),
            row("B", "U2U-RECORDS", due="1989-12-31"),
            row("C", "U2U-REPORTING", due="31/12/2100"),
        ],
    )
    before = counts()
    output, error = refused_import(path, "--dry-run")
    assert counts() == before
    assert "2 refused" in error
    lines = {int(line.split()[1]): line for line in output.splitlines() if line.startswith("row ")}
    assert (
        "refused: due date “31/12/9999” is out of range: use 1 Jan 1990 to 31 Dec 2100" in lines[2]
    )
    assert "refused: due date “1989-12-31” is out of range" in lines[3]
    assert "would update" in lines[4] and "due none → 2100-12-31" in lines[4]

    workbook = openpyxl.Workbook()
    workbook.active.append(["Reference", "Service", "Duty", "Due"])
    workbook.active.append(["A", "Chat", "CAA", dt.datetime(9999, 12, 31)])
    workbook.save(tmp_path / "register.xlsx")
    output, _ = refused_import(tmp_path / "register.xlsx")
    assert "refused: due date “9999-12-31” is out of range" in output
    assert obligation("CAA").current_cycle.due_date == before_due


def test_an_xlsx_workbook_imports_with_date_cells_and_header_aliases(ours, tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Reference", "service name", "DUTY", "Owner", "Due", "Status", "Colour"])
    sheet.append([101, "chat", "u2u-illegal-ra", "Robin@Example.test", dt.datetime(2027, 3, 1)])
    sheet.append([])  # a blank row keeps the numbering as the spreadsheet shows it
    sheet.append(["102", "Chat", "CAA", None, "2027-13-01", "In Progress", "red"])
    path = tmp_path / "register.xlsx"
    workbook.save(path)

    output, _ = refused_import(path)
    assert "Ignored columns: Colour" in output
    assert "row 2 101 (chat / U2U-ILLEGAL-RA): would update" in output
    assert "row 4 102 (Chat / CAA): refused: due date “2027-13-01” is not a date" in output

    import_file(path, "--import-good-rows", organisation="Ours")
    imported = obligation("101")
    assert imported.owner == ours["reviewer"]
    assert imported.current_cycle.due_date == dt.date(2027, 3, 1)


def test_met_from_the_command_waits_for_the_approver_and_says_what_stops_them(ours, tmp_path):
    """The command acts as the system user, which approves nothing: a "met" lands at ready
    for review, and the report names who it waits for, or why the file's approver cannot
    approve it yet (the workflow's own rules, in its own words)."""
    path = write_csv(
        tmp_path,
        [
            row("A", "TOS-RIGHT-TO-SUE", "met", owner="casey@example.test", evidence=DOC + "a"),
            row("B", "CAA", "met", approver="robin@example.test"),
            row(
                "C",
                "U2U-RECORDS",
                "met",
                owner="robin@example.test",
                evidence=DOC + "c",
                approver="robin@example.test",
            ),
            row(
                "D",
                "U2U-FOE-PRIVACY",
                "met",
                owner="casey@example.test",
                evidence=DOC + "d",
                approver="robin@example.test",
            ),
            # A spreadsheet cell cannot stand for a risk assessment or a measure's decision.
            row("E", "U2U-ILLEGAL-RA", "met", evidence=DOC + "e", approver="robin@example.test"),
            row(
                "F", "U2U-ILLEGAL-SAFETY", "met", evidence=DOC + "f", approver="robin@example.test"
            ),
        ],
    )
    marks = last_ids()
    output = import_file(path, organisation="Ours")
    lines = {line.split()[2]: line for line in output.splitlines() if line.startswith("row ")}
    for ref in "ABCDEF":
        assert obligation(ref).current_cycle.status == CycleStatus.READY_FOR_REVIEW, ref
    waiting = "lands at ready for review: waiting for {} to approve in the tracker"
    assert lines["A"].endswith(waiting.format("a reviewer"))
    assert lines["B"].endswith(
        f"{waiting.format('a reviewer')}; robin@example.test cannot approve it: It cannot be "
        "met without at least one current evidence item."
    )
    assert lines["C"].endswith(
        f"{waiting.format('a reviewer')}; robin@example.test cannot approve it: Four eyes: the "
        "obligation's owner cannot approve it."
    )
    assert lines["D"].endswith(waiting.format("robin@example.test"))
    assert "cannot approve it: It cannot be met without its risk assessment" in lines["E"]
    assert "a recommended Codes measure has no decision: ICU A2, ICU C1" in lines["F"]
    assert actors_since(marks) == {get_system_user().pk}
    # Each submission asked the reviewers; robin owns C, so is not asked to review it.
    assert "robin" in review_requests(obligation("D").current_cycle)
    assert "robin" not in review_requests(obligation("C").current_cycle)

    # Robin approves D in the tracker: the approval is robin's own act.
    cycle = do_approve(
        actor=ours["reviewer"], cycle=obligation("D").current_cycle, source=EventSource.ADMIN
    )
    assert cycle.status == CycleStatus.MET and cycle.reviewer == ours["reviewer"]


def test_the_file_cannot_get_an_approval_past_four_eyes(ours, tmp_path):
    cycle = obligation("U2U-RECORDS").current_cycle
    add_evidence_link(
        actor=ours["reviewer"], cycle=cycle, url=DOC + "old", title="", source="admin"
    )
    path = write_csv(
        tmp_path,
        [row("A", "U2U-RECORDS", "met", evidence=DOC + "new", approver="robin@example.test")],
    )
    output = import_file(path, organisation="Ours")
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.READY_FOR_REVIEW
    assert "status not started → in progress → ready for review;" in output
    assert (
        "robin@example.test cannot approve it: Four eyes: the uploader of its current evidence "
        "cannot approve it."
    ) in output
    # Importing again changes nothing and writes nothing.
    before = counts()
    assert ": unchanged: left at ready for review" in import_file(path, organisation="Ours")
    assert counts() == before


def test_a_file_behind_the_register_leaves_it_as_it_is(ours, tmp_path):
    owner, reviewer = ours["owner"], ours["reviewer"]
    do_start(actor=owner, cycle=obligation("CAA").current_cycle, source="admin")
    met = obligation("U2U-FOE-PRIVACY").current_cycle
    add_evidence_link(actor=owner, cycle=met, url=DOC, title="", source="admin")
    for step in (do_start, do_submit_for_review):
        met = step(actor=owner, cycle=met, source="admin")
    do_approve(actor=reviewer, cycle=met, source="admin")
    path = write_csv(
        tmp_path,
        [
            row("A", "CAA", "not started"),
            row("B", "U2U-RECORDS", "not applicable", notes="We keep no such records: exempt."),
            row("C", "U2U-FOE-PRIVACY", "in progress", due="2027-06-30"),
        ],
    )
    output = import_file(path, organisation="Ours")
    assert "left at in progress: the file says not started, and it is further on" in output
    assert obligation("A").current_cycle.status == CycleStatus.IN_PROGRESS
    assert "left at met: the file says in progress, and the cycle is closed" in output
    assert "due date left at" in output
    assert obligation("C").current_cycle.status == CycleStatus.MET
    closed = obligation("B").current_cycle
    assert closed.status == CycleStatus.NOT_APPLICABLE
    assert closed.status_reason == "We keep no such records: exempt."


def test_file_level_errors_are_command_errors(ours, tmp_path):
    for name, data, message in [
        ("empty.csv", b"", "The file is empty"),
        ("latin1.csv", "Service,Duty,Ref\nCaf\xe9,CAA,1\n".encode("latin-1"), "not UTF-8"),
        ("columns.csv", b"Service,Owner\nChat,x\n", "missing: duty code, external reference"),
        ("twice.csv", b"Duty,Duty code,Service,Id\n", "Two columns give the duty code"),
        ("header-only.csv", b"Duty,Service,Id\n", "no rows to import"),
        ("broken.xlsx", b"PK\x03\x04 not really a workbook", "not a readable .xlsx"),
        ("register.pdf", b"%PDF-1.4", "Upload a .csv or .xlsx file"),
    ]:
        (tmp_path / name).write_bytes(data)
        _, error = refused_import(tmp_path / name)
        assert message in error, (name, error)


def test_the_organisation_is_required_when_there_are_several(ours, tmp_path):
    path = write_csv(tmp_path, [row("A", "CAA")])
    with pytest.raises(CommandError, match="--organisation is required"):
        call_command("import_register", str(path), stdout=io.StringIO())
    with pytest.raises(CommandError, match="is not an organisation"):
        call_command("import_register", str(path), "--organisation", "Nope")
    by_id = import_file(path, organisation=str(ours["org"].pk))
    assert "1 row(s) updated" in by_id


def test_the_row_limit():
    too_many = csv_bytes([row(f"R{n}", "CAA") for n in range(MAX_ROWS + 1)])
    with pytest.raises(ImportFileError, match="more than 5,000 rows"):
        read_table("big.csv", too_many)


# --- Limits: a file cannot tie up a worker ----------------------------------------------------


def workbook_bytes(*rows: list[object], at: dict[str, object] | None = None) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for values in rows:
        sheet.append(values)
    for cell, value in (at or {}).items():
        sheet[cell] = value
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def rewrite_sheet(data: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    """The workbook with its first sheet's XML passed through `change`."""
    source, result = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(result, "w", zipfile.ZIP_DEFLATED) as target:
        for part in source.infolist():
            content = source.read(part)
            if part.filename == "xl/worksheets/sheet1.xml":
                content = change(content.decode()).encode()
            target.writestr(part, content)
    return result.getvalue()


GOOD_ROW = ["A", "Chat", "CAA"]
SHORT_HEADER = ["Reference", "Service", "Duty"]


def refusal(name: str, data: bytes) -> str:
    with pytest.raises(ImportFileError) as raised:
        read_table(name, data)
    return str(raised.value)


def test_blank_rows_count_toward_the_row_limit_and_reading_stops_there():
    # A few kilobytes that once kept a worker busy for minutes: a cell a million rows down.
    blank_rows = workbook_bytes(SHORT_HEADER, GOOD_ROW, at={"A1048576": "x"})
    assert len(blank_rows) < 10_000
    assert refusal("register.xlsx", blank_rows) == (
        "The file has more than 5,000 rows below its header (blank rows count too); split it "
        "into files of at most 5,000 rows."
    )
    assert "more than 5,000 rows" in refusal("register.csv", b"Ref,Service,Duty\n" + b",,\n" * 5001)
    # 5,000 rows, blank or not, are within the limit.
    table = read_table("register.csv", csv_bytes([GOOD_ROW, *[[""]] * 4999], SHORT_HEADER))
    assert [number for number, _ in table.rows] == [2]


def test_a_workbook_is_read_as_written_not_as_large_as_it_declares():
    declared = rewrite_sheet(
        workbook_bytes(SHORT_HEADER, GOOD_ROW),
        lambda xml: re.sub(r'<dimension ref="[^"]*"', '<dimension ref="A1:XFD1048576"', xml),
    )
    table = read_table("register.xlsx", declared)
    assert table.rows == [(2, GOOD_ROW)]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("register.csv", csv_bytes([[*GOOD_ROW, *[""] * 47, "x"]], SHORT_HEADER)),
        ("register.xlsx", workbook_bytes(SHORT_HEADER, GOOD_ROW, at={"XFD2": "x"})),
    ],
)
def test_the_column_limit(name, data):
    assert refusal(name, data) == (
        "Row 2 has cells beyond column AX: the file may have at most 50 columns."
    )


def test_blank_cells_beyond_the_column_limit_are_no_fault():
    trailing = csv_bytes([[*GOOD_ROW, *[""] * 100]], SHORT_HEADER)
    [(number, cells)] = read_table("register.csv", trailing).rows
    assert number == 2 and cells[:3] == GOOD_ROW and not any(cells[3:])


@pytest.mark.parametrize(
    ("name", "data", "where"),
    [
        ("register.csv", csv_bytes([["A", "Chat", "x" * 10_001]], SHORT_HEADER), "row 2, column C"),
        # Past the csv module's own field limit, the same refusal.
        ("register.csv", csv_bytes([["A", "x" * 200_000, "CAA"]], SHORT_HEADER), "row 2"),
        ("register.xlsx", workbook_bytes(SHORT_HEADER, ["A", "x" * 10_001]), "row 2, column B"),
    ],
)
def test_the_cell_length_limit(name, data, where):
    assert refusal(name, data) == (
        f"The cell at {where} is longer than 10,000 characters, the limit for a cell."
    )
    # At the limit, a cell is read.
    read_table("register.csv", csv_bytes([["A", "Chat", "x" * 10_000]], SHORT_HEADER))


def test_the_byte_limit_and_a_workbook_that_unpacks_past_it(settings):
    settings.IMPORT_MAX_BYTES = 50_000
    at_limit = csv_bytes([GOOD_ROW], SHORT_HEADER)
    at_limit += b" " * (50_000 - len(at_limit))  # one blank row
    assert read_table("register.csv", at_limit).rows == [(2, GOOD_ROW)]
    assert refusal("register.csv", at_limit + b" ") == (
        "The file is larger than 50,000 bytes, the limit for an import; split it into smaller "
        "files."
    )
    # Two megabytes of text packs into a few kilobytes of workbook.
    big_cell = f'<row r="2"><c r="A2" t="inlineStr"><is><t>{"x" * 2_000_000}</t></is></c></row>'
    bomb = rewrite_sheet(
        workbook_bytes(SHORT_HEADER),
        lambda xml: xml.replace("</sheetData>", f"{big_cell}</sheetData>"),
    )
    assert len(bomb) < 50_000
    assert re.fullmatch(
        r"The workbook unpacks to [\d,]+ bytes; the limit is 500,000 bytes \(10 times the "
        r"50,000-byte file limit\)\.",
        refusal("register.xlsx", bomb),
    )


def test_the_command_reads_no_further_than_the_byte_limit(ours, tmp_path, settings):
    settings.IMPORT_MAX_BYTES = 1_000
    path = tmp_path / "register.csv"
    path.write_bytes(csv_bytes([row("A", "CAA")]) + b" " * 2_000)
    output, error = refused_import(path)
    assert error == (
        "register.csv: The file is larger than 1,000 bytes, the limit for an import; split it "
        "into smaller files."
    )
    assert output == ""


# --- The admin page -----------------------------------------------------------------------


def upload(data: bytes, name: str = "register.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def post_import(client, organisation, data: bytes, name: str = "register.csv", **options):  # type: ignore[no-untyped-def]
    url = reverse("admin:obligations_obligation_import")
    form = {"organisation": organisation.pk, "file": upload(data, name)}
    form.update({key: "on" for key, value in options.items() if value})
    return client.post(url, form)


ADMIN_ROWS = [
    row("A", "U2U-ILLEGAL-RA", "in progress", owner="robin@example.test"),
    row("B", "CAA", "met", evidence=DOC + "b", approver="robin@example.test"),
]


def test_the_admin_page_is_for_editors_only(client, ours):
    url = reverse("admin:obligations_obligation_import")
    changelist = reverse("admin:obligations_obligation_changelist")
    client.force_login(ours["owner"])
    response = client.get(url)
    assert response.status_code == 200
    assert b'id="id_dry_run" checked' in response.content
    assert url.encode() in client.get(changelist).content
    client.force_login(ours["auditor"])
    assert client.get(url).status_code == 403
    assert url.encode() not in client.get(changelist).content


def test_an_admin_dry_run_shows_the_report_and_writes_nothing(
    client, ours, django_capture_on_commit_callbacks
):
    client.force_login(ours["owner"])
    before = counts()
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_import(client, ours["org"], csv_bytes(ADMIN_ROWS), dry_run=True)
    assert response.status_code == 200
    # Nothing kept, no review request queued and no worker asked to deliver one.
    assert counts() == before and not callbacks
    content = response.content.decode()
    assert "Dry run of register.csv: 2 row(s) to update, 0 unchanged, 0 refused" in content
    assert content.count("Would update") == 2
    assert "waiting for robin@example.test to approve in the tracker" in content


def test_an_admin_import_acts_only_as_the_signed_in_user(client, ours):
    """The file's approver is asked to approve, never recorded as having approved."""
    client.force_login(ours["owner"])
    marks = last_ids()
    response = post_import(client, ours["org"], csv_bytes(ADMIN_ROWS))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Imported register.csv into Ours: 2 row(s) updated" in content
    assert "waiting for robin@example.test to approve in the tracker" in content
    cycle = obligation("B").current_cycle
    assert cycle.status == CycleStatus.READY_FOR_REVIEW and cycle.reviewer is None
    assert cycle.submitted_by == ours["owner"]
    assert "robin" in review_requests(cycle)
    events = Event.objects.filter(pk__gt=marks[0])
    assert set(events.values_list("source", flat=True)) == {EventSource.IMPORT}
    assert not events.filter(to_status=CycleStatus.MET).exists()
    assert actors_since(marks) == {ours["owner"].pk}
    assert obligation("A").history.first().history_user == ours["owner"]  # type: ignore[attr-defined]


def submitted(user, code: str) -> ObligationCycle:  # type: ignore[no-untyped-def]
    """`user` adds evidence to the obligation and submits it for review, in the tracker."""
    cycle = obligation(code).current_cycle
    add_evidence_link(actor=user, cycle=cycle, url=DOC + code, title="", source="admin")
    cycle = do_start(actor=user, cycle=cycle, source="admin")
    return do_submit_for_review(actor=user, cycle=cycle, source="admin")


def test_a_reviewer_importing_met_approves_only_someone_elses_submission(client, ours):
    casey, robin = ours["owner"], ours["reviewer"]
    member(ours["org"], role=Role.MANAGER, username="lee")
    for code in ("CAA", "U2U-FOE-PRIVACY", "U2U-RECORDS", "U2U-COMPLAINTS"):
        submitted(casey, code)
    rows = [
        # Casey's submissions: robin approves when the file names robin, or nobody.
        row("A", "CAA", "met"),
        row("B", "U2U-FOE-PRIVACY", "met", approver="robin@example.test"),
        # ...but not when it names someone else, who is left to approve it.
        row("C", "U2U-RECORDS", "met", approver="lee@example.test"),
        # ...nor when the row adds evidence as robin (who then uploaded it).
        row("D", "U2U-COMPLAINTS", "met", evidence=DOC + "d"),
        # Robin's own submission, made by this import: someone else approves it.
        row("E", "TOS-RIGHT-TO-SUE", "met", evidence=DOC + "e", approver="robin@example.test"),
    ]
    client.force_login(robin)
    marks = last_ids()
    response = post_import(client, ours["org"], csv_bytes(rows))
    assert response.status_code == 200
    assert "5 row(s) updated, 0 unchanged, 0 refused" in response.content.decode()
    report = {r.external_ref: r.details for r in response.context["report"].rows}
    for ref in "AB":
        cycle = obligation(ref).current_cycle
        assert cycle.status == CycleStatus.MET and cycle.reviewer == robin, ref
        assert report[ref].endswith("status ready for review → met (approved by robin)"), ref
    for ref in "CDE":
        assert obligation(ref).current_cycle.status == CycleStatus.READY_FOR_REVIEW, ref
    assert report["C"].endswith(
        "left at ready for review: waiting for lee@example.test to approve in the tracker"
    )
    assert report["D"].endswith(
        "left at ready for review: waiting for a reviewer to approve in the tracker; robin "
        "cannot approve it: Four eyes: the uploader of its current evidence cannot approve it."
    )
    assert report["E"].endswith(
        "status not started → in progress → ready for review; lands at ready for review: "
        "waiting for a reviewer to approve in the tracker; robin cannot approve it: Four eyes: "
        "the person who submitted it for review cannot approve it."
    )
    assert actors_since(marks) == {robin.pk}
    assert {"casey", "lee"} <= review_requests(obligation("E").current_cycle)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("register.csv", b"\xff\xfe\x00\x00garbage", "not UTF-8"),
        ("register.xlsx", b"PK\x03\x04 not a workbook", "not a readable .xlsx"),
        ("register.docx", b"whatever", "Upload a .csv or .xlsx file"),
        ("register.csv", b"", "The submitted file is empty"),
        ("register.csv", b"Owner,Status\nx,met\n", "missing: service, duty code"),
        (
            "register.csv",
            csv_bytes([row(f"R{n}", "CAA") for n in range(MAX_ROWS + 1)]),
            "more than 5,000 rows",
        ),
    ],
)
def test_a_malformed_upload_is_a_form_error(client, ours, name, data, message):
    client.force_login(ours["owner"])
    before = counts()
    response = post_import(client, ours["org"], data, name)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["form"].errors
    assert counts() == before


def test_a_user_of_another_organisation_cannot_import_into_ours(client, ours):
    client.force_login(ours["stranger"])
    before = counts()
    response = post_import(client, ours["org"], csv_bytes(ADMIN_ROWS))
    assert response.status_code == 200
    assert "organisation" in response.context["form"].errors
    # Into their own organisation, our services are unknown.
    theirs = Organisation.objects.get(name="Theirs")
    response = post_import(client, theirs, csv_bytes(ADMIN_ROWS))
    assert "Nothing was written" in response.content.decode()
    assert response.content.decode().count("unknown service") == 2
    assert counts() == before


def test_an_upload_over_the_byte_limit_is_not_received(client, ours, settings):
    settings.IMPORT_MAX_BYTES = 1_000
    client.force_login(ours["owner"])
    before = counts()
    response = post_import(client, ours["org"], csv_bytes(ADMIN_ROWS) + b" " * 2_000)
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "file": [
            "The file is larger than 1,000 bytes, the limit for an import; split it into "
            "smaller files."
        ]
    }
    # The import's upload handler stopped at the limit: the file never reached the view.
    assert not response.wsgi_request.FILES
    assert counts() == before
    # Within the limit, the same page imports.
    response = post_import(client, ours["org"], csv_bytes(ADMIN_ROWS), dry_run=True)
    assert "2 row(s) to update" in response.content.decode()


def test_the_import_page_still_checks_csrf(ours):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ours["owner"])
    before = counts()
    assert post_import(client, ours["org"], csv_bytes(ADMIN_ROWS)).status_code == 403
    assert counts() == before
    page = client.get(reverse("admin:obligations_obligation_import"))
    token = page.context["csrf_token"]
    response = client.post(
        reverse("admin:obligations_obligation_import"),
        {
            "organisation": ours["org"].pk,
            "file": upload(csv_bytes(ADMIN_ROWS)),
            "csrfmiddlewaretoken": token,
        },
    )
    assert "Imported register.csv into Ours: 2 row(s) updated" in response.content.decode()
