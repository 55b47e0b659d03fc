"""A real browser through the admin: the compliance user does the work, the reviewer approves.

Playwright drives Debian's chromium (no browser download); screenshots are kept in
test-artifacts/browser/ as the run's record.
"""

import re
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from openpyxl import load_workbook

from obligations.assessments.models import AssessmentKind, MeasureDecision, RiskAssessment
from obligations.assessments.selectors import recommended_measures
from obligations.dates import london_today
from obligations.providers.models import Service
from obligations.register.models import Obligation
from obligations.register.states import CycleStatus, EventKind
from tests.browser import SHOTS, browser_sign_in
from tests.pdfs import pdf_texts, save_page_png

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clock() -> Iterator[None]:
    """The live server and the browser need time to pass (sessions, timeouts), so this test
    runs on the real clock instead of the suite's frozen one; it asserts nothing date-bound."""
    yield None


def test_compliance_does_the_work_and_a_colleague_approves(live_server, browser, tmp_path):
    call_command("load_catalogue", verbosity=0)
    call_command("load_demo", verbosity=0)
    obligation = Obligation.objects.get(
        service__name="Northwind Social", duty__code="U2U-ILLEGAL-RA"
    )
    page_url = f"{live_server.url}/admin/obligations/obligation/{obligation.pk}/change/"
    pdf = tmp_path / "illegal-content-ra.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% illegal content risk assessment\n%%EOF\n")

    def log_in(page, username):  # type: ignore[no-untyped-def]
        browser_sign_in(page, live_server.url, username)

    def transition(page, label):  # type: ignore[no-untyped-def]
        page.click(f"#workflow button:has-text('{label}')")
        page.wait_for_load_state()

    page = browser.new_page(viewport={"width": 1366, "height": 768})
    log_in(page, "compliance")
    page.screenshot(path=SHOTS / "01-logged-in.png", full_page=True)

    # The register reads whole at 1366 px: every column, the owner's last, on the screen.
    page.goto(f"{live_server.url}/admin/obligations/obligation/")
    for column in ("column-due", "column-owner"):
        box = page.locator(f"#result_list th.{column}").bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1366, (column, box)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=SHOTS / "01b-register-at-1366.png")

    page.goto(page_url)
    assert "Not started" in page.inner_text("#workflow-title")
    transition(page, "Start work")
    assert "Now in progress" in page.inner_text(".messagelist")

    page.fill("#evidence #id_title", "Illegal content risk assessment 2026")
    page.set_input_files("#evidence input[type=file]", str(pdf))
    page.click("#evidence button:has-text('Add evidence')")
    page.wait_for_load_state()
    assert "Evidence added." in page.inner_text(".messagelist")
    assert "illegal content risk assessment 2026" in page.inner_text("#evidence").lower()
    page.screenshot(path=SHOTS / "02-evidence-uploaded.png", full_page=True)

    transition(page, "Submit for review")
    assert "Ready for review" in page.inner_text("#workflow-title")
    # The submitter cannot approve their own work: four eyes, said instead of a button.
    assert page.locator("#workflow button:has-text('Approve')").count() == 0
    assert "Four eyes" in page.inner_text("#workflow .workflow-refused")
    page.screenshot(path=SHOTS / "03-self-approval-not-offered.png", full_page=True)

    reviewer = browser.new_page()
    log_in(reviewer, "reviewer")
    reviewer.click("#user-tools a:has-text('My work')")
    waiting = reviewer.locator("section", has_text="Waiting for my review")
    assert "U2U-ILLEGAL-RA" in waiting.inner_text()
    reviewer.screenshot(path=SHOTS / "04-reviewer-my-work.png", full_page=True)
    waiting.locator("a", has_text="U2U-ILLEGAL-RA").first.click()
    reviewer.wait_for_load_state()
    transition(reviewer, "Approve")
    assert "Now met" in reviewer.inner_text(".messagelist")
    assert "Met" in reviewer.inner_text("#workflow-title")
    reviewer.screenshot(path=SHOTS / "05-approved.png", full_page=True)

    steps = list(
        obligation.events.filter(kind=EventKind.STATUS)
        .order_by("at", "id")
        .values_list("to_status", "actor__username", "source")
    )
    assert steps == [
        (CycleStatus.IN_PROGRESS, "compliance", "admin"),
        (CycleStatus.READY_FOR_REVIEW, "compliance", "admin"),
        (CycleStatus.MET, "reviewer", "admin"),
    ]


def test_the_printable_assessment_record_renders_and_prints(live_server, browser):
    call_command("load_catalogue", verbosity=0)
    call_command("load_demo", verbosity=0)
    assessment = RiskAssessment.objects.get(kind=AssessmentKind.ILLEGAL_U2U)
    page = browser.new_page()
    browser_sign_in(page, live_server.url, "manager")
    page.goto(f"{live_server.url}/admin/obligations/riskassessment/{assessment.pk}/change/")
    assert "20 of 20 rated" in page.inner_text("body")
    # Listen before clicking: the tab can open before a later wait would start.
    with page.context.expect_page() as opened:
        page.click("text=Open to print")
    record = opened.value
    record.wait_for_load_state()
    assert "Illegal content (user-to-user, s.9) risk assessment" in record.inner_text("h1")
    rows = record.locator("table tbody tr")
    assert rows.count() == 20
    assert "High" in record.inner_text("table")
    record.screenshot(path=SHOTS / "10-assessment-record.png", full_page=True)
    # Chromium's print engine applies the print styles: the record prints (here, to PDF).
    record.emulate_media(media="print")
    assert record.locator(".actions").is_hidden()
    pdf = record.pdf(path=str(SHOTS / "10-assessment-record.pdf"), format="A4")
    assert pdf.startswith(b"%PDF")
    register = browser.new_page()
    browser_sign_in(register, live_server.url, "compliance")
    register.goto(f"{live_server.url}/admin/obligations/service/{assessment.service_id}/measures/")
    assert "Adopted" in register.inner_text("#measures")
    register.screenshot(path=SHOTS / "11-measures-register.png", full_page=True)


def test_the_manager_dashboard_fits_drills_down_and_prints(live_server, browser):
    call_command("load_catalogue", verbosity=0)
    call_command("load_demo", verbosity=0)
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    browser_sign_in(page, live_server.url, "manager")
    page.click("#user-tools a:has-text('Dashboard')")
    page.wait_for_load_state()
    assert "Compliance dashboard" in page.inner_text("h1")
    # A laptop screen: the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    notices = page.locator("section", has_text="Open Ofcom notices")
    assert "In its representations window" in notices.locator("tr.window").inner_text()
    page.screenshot(path=SHOTS / "dashboard.png", full_page=True)

    shown = int(page.inner_text("#total-overdue .figure"))
    assert shown > 0
    page.click("#total-overdue")
    page.wait_for_load_state()
    # The admin list counts what it lists ("16 obligations"): the dashboard's figure.
    listed = re.search(r"(\d+) obligations?", page.inner_text(".paginator"))
    assert listed is not None
    assert int(listed.group(1)) == shown
    assert page.locator("#result_list tbody tr").count() == shown
    page.screenshot(path=SHOTS / "dashboard-overdue-list.png", full_page=True)

    page.go_back()
    page.wait_for_load_state()
    page.emulate_media(media="print")
    assert page.locator("form.filters").is_hidden()
    assert page.locator("nav.site").is_hidden()
    page.screenshot(path=SHOTS / "dashboard-print.png", full_page=True)
    pdf = page.pdf(path=str(SHOTS / "dashboard.pdf"), format="A4", landscape=True)
    assert pdf.startswith(b"%PDF")


def test_the_auditor_verifies_a_pack_and_exports_the_register_without_typing_a_url(
    live_server, browser, tmp_path
):
    call_command("load_catalogue", verbosity=0)
    call_command("load_demo", verbosity=0)
    page = browser.new_page(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    browser_sign_in(page, live_server.url, "auditor")
    page.click('#user-tools a:has-text("Auditor\'s corner")')
    page.wait_for_selector("#audit-packs")
    page.screenshot(path=SHOTS / "auditor-01-corner.png", full_page=True)

    page.select_option("#pack-service", label="Northwind Social Ltd: Northwind Social")
    with page.expect_download() as pack_download:
        page.click("#pack-for-service")
    pack = tmp_path / pack_download.value.suggested_filename
    pack_download.value.save_as(pack)
    assert pack.name.startswith("audit-pack-service-")

    page.set_input_files("#verify input[type=file]", str(pack))
    page.click("#verify-pack")
    page.wait_for_selector("#verify-result")
    assert page.inner_text("#verify-result").startswith("Valid: the signature is the tracker's")
    page.screenshot(path=SHOTS / "auditor-02-pack-verified.png", full_page=True)

    with page.expect_download() as export_download:
        page.click("#export-xlsx")
    export = tmp_path / "register.xlsx"
    export_download.value.save_as(export)
    sheet = load_workbook(export)["Obligations"]
    northwind = Obligation.objects.filter(provider__organisation__name="Northwind Media Group")
    assert sheet.max_row == 1 + northwind.count()
    assert sheet.freeze_panes == "A2"


def test_compliance_decides_several_measures_at_once(live_server, browser):
    """The measures register at laptop size: three measures selected and adopted with one
    rationale; first refused (no rationale) with everything kept and the error in view, then
    recorded, the progress moving on by three."""
    call_command("load_catalogue", verbosity=0)
    call_command("load_demo", verbosity=0)
    service = Service.objects.get(name="Northwind Social")
    decided = set(
        MeasureDecision.objects.filter(service=service).values_list("measure__code", flat=True)
    )
    rows = recommended_measures(service, london_today())
    recommended = [r.code for r in rows if r.recommended]
    chosen = [code for code in recommended if code not in decided][:3]
    assert len(chosen) == 3
    before = sum(1 for code in recommended if code in decided)
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    browser_sign_in(page, live_server.url, "compliance")
    page.goto(f"{live_server.url}/admin/obligations/service/{service.pk}/change/")
    page.click(".object-tools a:has-text('Measures register')")
    page.wait_for_selector("#measures-form")
    progress = f"{before} of {len(recommended)} recommended measures decided"
    assert progress in page.inner_text("#progress")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=SHOTS / "measures-01-register.png")

    for code in chosen:
        page.check(f"#measures tr:has(strong:text-is('{code}')) input[name=selected]")
    assert "3 measures selected" in page.inner_text("#bulk-count")
    page.select_option("#bulk_decision", "adopted")
    page.select_option("#bulk_evidence", label="Moderation operations manual (U2U-ILLEGAL-SAFETY)")
    page.click("#bulk-record")
    page.wait_for_selector("#refused")
    # Refused: nothing recorded, every choice kept, the error beside the rationale and in view.
    assert "Type the rationale" in page.inner_text("#bulk")
    assert page.locator("input[name=selected]:checked").count() == 3
    assert page.input_value("#bulk_decision") == "adopted"
    assert page.locator("#bulk_evidence option:checked").count() == 1
    assert page.evaluate("document.activeElement.id") == "bulk_detail"
    assert page.locator("#bulk .errorlist").is_visible()
    assert page.evaluate("window.scrollY") > 0
    page.screenshot(path=SHOTS / "measures-02-refused-input-kept.png")
    assert MeasureDecision.objects.filter(service=service).count() == len(decided)

    page.fill("#bulk_detail", "Covered by the trust and safety operating model, reviewed yearly.")
    page.click("#bulk-record")
    page.wait_for_selector(".messagelist")
    assert f"Recorded 3 decisions: {', '.join(chosen)}." in page.inner_text(".messagelist")
    progress = f"{before + 3} of {len(recommended)} recommended measures decided"
    assert progress in page.inner_text("#progress")
    page.screenshot(path=SHOTS / "measures-03-recorded.png")
    saved = MeasureDecision.objects.filter(service=service, measure__code__in=chosen)
    assert sorted(saved.values_list("measure__code", "decision", "decided_by__username")) == [
        (code, "adopted", "compliance") for code in sorted(chosen)
    ]
    assert {d.detail for d in saved} == {
        "Covered by the trust and safety operating model, reviewed yearly."
    }


def test_the_manager_downloads_the_board_report_from_the_dashboard(live_server, browser, tmp_path):
    call_command("load_catalogue", verbosity=0)
    call_command("load_demo", verbosity=0)
    page = browser.new_page(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    browser_sign_in(page, live_server.url, "manager")
    page.click("#user-tools a:has-text('Dashboard')")
    page.wait_for_load_state()
    overdue = int(page.inner_text("#total-overdue .figure"))
    applicable = int(page.inner_text("#total-applicable").split()[0])
    upcoming = re.search(r"\((\d+)\)", page.inner_text("#h-upcoming"))
    assert upcoming is not None
    with page.expect_download() as download:
        page.click("#board-report")
    report = tmp_path / download.value.suggested_filename
    download.value.save_as(report)
    assert report.name.startswith("board-report-northwind-media-group-")
    content = report.read_bytes()
    texts = pdf_texts(content)
    assert len(texts) == 1
    width, height = save_page_png(content, SHOTS / "board-report-page1.png")
    assert (width, height) == (1241, 1754)  # A4 (210 by 297 mm) at 150 dpi
    [text] = texts
    assert f"{applicable} applicable obligations:" in text
    assert f", {overdue} overdue" in text
    assert f"Overdue ({overdue})" in text
    assert f"{upcoming.group(1)} deadlines in the next 90 days" in text
    assert "by manager" in text
    assert "Page 1 of 1" in text
