"""A real browser on the register's filter by service where there are too many services to
list: type part of a name, pick it, the list shows that service's obligations; and the same
without scripts, through the plain form."""

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command

from obligations import adminsearch
from obligations.providers.models import Service
from obligations.register.models import Obligation
from tests.browser import SHOTS, browser_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clock() -> Iterator[None]:
    """The live server and the browser need time to pass (sessions, timeouts): the real
    clock, as in test_browser.py; nothing here is date-bound."""
    yield None


@pytest.fixture
def register(live_server, monkeypatch):  # type: ignore[no-untyped-def]
    """The demo register, its organisation past a threshold of two services."""
    call_command("load_catalogue", verbosity=0)
    call_command("load_demo", verbosity=0)
    monkeypatch.setattr(adminsearch, "SEARCH_THRESHOLD", 2)
    service = Service.objects.get(name="Northwind Social")
    return {"url": f"{live_server.url}/admin/obligations/obligation/", "service": service}


def chosen_service(page) -> list[str]:  # type: ignore[no-untyped-def]
    return parse_qs(urlsplit(page.url).query).get("service__id__exact", [])


def listed_services(page) -> set[str]:  # type: ignore[no-untyped-def]
    return set(page.locator("#result_list td.field-service_or_provider").all_inner_texts())


def test_typing_part_of_a_service_name_and_picking_it_lists_its_obligations(
    live_server, browser, register
):
    service = register["service"]
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    browser_sign_in(page, live_server.url, "compliance")
    page.goto(register["url"])
    box = page.locator("#service_name-box")
    assert box.is_visible()
    # No service is listed until asked for.
    assert "Northwind Chat" not in page.inner_text("details[data-filter-title=service]")
    box.press_sequentially("social", delay=50)
    offered = page.locator("#service_name-box-matches option")
    offered.first.wait_for(state="attached")
    assert offered.evaluate_all("options => options.map(o => o.value)") == ["Northwind Social"]
    page.locator("details[data-filter-title=service]").screenshot(
        path=SHOTS / "filter-01-service-typed.png"
    )
    # Picking an offered name (as the browser's list does: the whole name at once).
    box.fill("Northwind Social")
    with page.expect_navigation():
        box.press("Enter")
    assert chosen_service(page) == [str(service.pk)]
    assert listed_services(page) == {"Northwind Social"}
    total = Obligation.objects.filter(service=service).count()
    assert f"{total} results" in page.inner_text("#toolbar")
    selected = page.locator("details[data-filter-title=service] li.selected")
    assert selected.inner_text().strip() == "Northwind Social"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.locator("details[data-filter-title=service]").screenshot(
        path=SHOTS / "filter-02-service-picked.png"
    )
    page.screenshot(path=SHOTS / "filter-03-register-filtered.png")


def test_without_scripts_the_box_searches_and_offers_the_names_to_pick(
    live_server, browser, register
):
    service = register["service"]
    context = browser.new_context(
        viewport={"width": 1366, "height": 768}, java_script_enabled=False
    )
    page = context.new_page()
    browser_sign_in(page, live_server.url, "compliance")
    page.goto(register["url"])
    page.fill("#service_name-box", "soci")
    with page.expect_navigation():
        page.press("#service_name-box", "Enter")
    assert parse_qs(urlsplit(page.url).query) == {"service_name": ["soci"]}
    assert listed_services(page) == {"Northwind Social"}
    assert page.input_value("#service_name-box") == "soci"
    page.locator("details[data-filter-title=service]").screenshot(
        path=SHOTS / "filter-04-no-scripts-searched.png"
    )
    with page.expect_navigation():
        page.click("details[data-filter-title=service] a:text-is('Northwind Social')")
    assert chosen_service(page) == [str(service.pk)]
    assert page.input_value("#service_name-box") == ""
    context.close()
