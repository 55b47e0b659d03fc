"""A real browser through a risk assessment: compliance starts one for a small service, rates
every row harm by harm, is refused once on the way without losing what was typed, and ends
with every row rated. Screenshots are kept in test-artifacts/browser/risk-*.png."""

from collections.abc import Iterator

import pytest
from django.core.management import call_command

from obligations.assessments.models import RiskAssessment
from obligations.register.models import Event, Obligation
from obligations.register.states import EventKind
from tests.browser import SHOTS, browser_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LEVELS = ["low", "medium", "high"]


@pytest.fixture
def clock() -> Iterator[None]:
    """The live server and the browser run on the real clock (sessions, timeouts); nothing
    here is date-bound."""
    yield None


def fits(page) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def rate(entry, n, impact=True):  # type: ignore[no-untyped-def]
    entry.locator("select[name$='-likelihood']").select_option(LEVELS[n % 3])
    if impact:
        entry.locator("select[name$='-impact']").select_option(LEVELS[(n + 1) % 3])
    entry.locator("textarea[name$='-rationale']").fill(f"Row {n}: from user reports.")


def save(page):  # type: ignore[no-untyped-def]
    page.click("input[name=_continue]")
    page.wait_for_load_state()


def test_compliance_rates_every_row_of_a_small_service_losing_nothing(live_server, browser):
    call_command("load_catalogue", verbosity=0)
    call_command("load_demo", verbosity=0)
    obligation = Obligation.objects.get(
        service__name="Northwind Search", duty__code="SEARCH-ILLEGAL-RA"
    )
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    browser_sign_in(page, live_server.url, "compliance")
    page.goto(f"{live_server.url}/admin/obligations/obligation/{obligation.pk}/change/")
    page.click("#assessment-panel button:has-text('Start the risk assessment')")
    page.wait_for_selector("#rating")
    assessment = RiskAssessment.objects.get(cycle=obligation.current_cycle)
    rows = assessment.entries.count()
    assert page.inner_text("#rating-progress") == f"0 of {rows} rated"
    assert fits(page)
    page.screenshot(path=SHOTS / "risk-01-started.png")
    # The four steps, in order, down the page.
    headings = [
        h for h in page.locator("#content-main h2").all_inner_texts() if h[:2] in "1.2.3.4."
    ]
    assert [h[:2] for h in headings] == ["1.", "2.", "3.", "4."]

    page.fill("#id_understand_notes", "User reports, moderation data, Ofcom's Register of Risks.")
    harms = page.locator("details.harm")
    assert harms.count() == rows
    half = rows // 2
    for n in range(half):
        group = harms.nth(n)
        if group.get_attribute("open") is None:
            group.locator("> summary").click()
        # One row is left without its impact: the save is refused.
        rate(group.locator(".entry"), n, impact=n != 3)
    first = harms.nth(0).locator(".entry")
    first.locator("summary:has-text('Risk factors')").click()
    first.locator("label:has-text('Predictive search')").click()
    page.screenshot(path=SHOTS / "risk-02-rating.png")
    save(page)

    errors = page.locator("#rating-errors")
    assert "Not saved: 1 thing to correct" in errors.inner_text()
    assert ", impact: Rate both the likelihood and the impact" in errors.inner_text()
    wrong = harms.nth(3)
    assert wrong.get_attribute("open") is not None
    assert "choose the impact" in wrong.locator(".errorlist").inner_text()
    # Nothing typed is lost: every row rated so far still holds what was typed.
    for n in range(half):
        entry = harms.nth(n).locator(".entry")
        assert entry.locator("select[name$='-likelihood']").input_value() == LEVELS[n % 3]
        assert entry.locator("textarea[name$='-rationale']").input_value().startswith(f"Row {n}:")
    assert harms.nth(0).locator("label:has-text('Predictive search') input").is_checked()
    assert page.input_value("#id_understand_notes").startswith("User reports")
    assert page.inner_text("#rating-progress") == f"0 of {rows} rated"
    assert fits(page)
    page.click("#rating-errors a")
    page.screenshot(path=SHOTS / "risk-03-refused.png")

    wrong.locator("select[name$='-impact']").select_option("high")
    save(page)
    assert "changed successfully" in page.inner_text(".messagelist")
    assert page.inner_text("#rating-progress") == f"{half} of {rows} rated"
    # The next kind of harm to rate is the one open.
    assert harms.nth(half).get_attribute("open") is not None
    assert harms.nth(0).get_attribute("open") is None
    page.screenshot(path=SHOTS / "risk-04-half-rated.png")

    for n in range(half, rows):
        group = harms.nth(n)
        if group.get_attribute("open") is None:
            group.locator("> summary").click()
        rate(group.locator(".entry"), n)
    page.fill("#id_review_notes", "Reported to the board; reviewed yearly.")
    save(page)
    assert page.inner_text("#rating-progress") == f"{rows} of {rows} rated"
    assert fits(page)
    page.screenshot(path=SHOTS / "risk-05-all-rated.png")
    page.screenshot(path=SHOTS / "risk-06-all-rated-full.png", full_page=True)

    entries = list(assessment.entries.order_by("harm_kind__family", "harm_kind__label"))
    assert all(e.complete and e.updated_by.username == "compliance" for e in entries)
    assert entries[3].impact == "high"
    assert [e.likelihood for e in entries] == [LEVELS[n % 3] for n in range(rows)]
    assert list(entries[0].risk_factors.values_list("label", flat=True)) == [
        "Predictive search (search suggestions)"
    ]
    assessment.refresh_from_db()
    assert assessment.review_notes.startswith("Reported to the board")

    # The demo's children's assessment, 70 rows by harm and age group, reads the same way.
    children = RiskAssessment.objects.get(service__name="Northwind Social", kind="children_u2u")
    page.goto(f"{live_server.url}/admin/obligations/riskassessment/{children.pk}/change/")
    assert page.inner_text("#rating-progress").endswith(" of 70 rated")
    assert fits(page)
    page.locator("details.harm[open] > summary").first.evaluate("e => e.scrollIntoView()")
    page.screenshot(path=SHOTS / "risk-07-childrens-by-age-group.png")
    history = assessment.history.filter(history_user__username="compliance")
    assert history.exists()
    assert Event.objects.filter(obligation=obligation, kind=EventKind.ASSESSMENT).exists()
