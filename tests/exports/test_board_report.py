"""The board report: one A4 page whose figures are the dashboard's, for an organisation or a
provider, on demo data and on an organisation too large to list; who may read it; what
it costs; and what it leaves on the access log."""

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from obligations.access.models import AccessAction, AccessLog, Organisation, Role
from obligations.exports.board import SHOWN
from obligations.exports.pdf import BASE_URL, StaticOnlyFetcher
from obligations.providers.models import Provider, Service
from obligations.providers.penalties import money
from tests.browser import SHOTS
from tests.bulk import grower
from tests.conftest import TODAY
from tests.factories import (
    OrganisationFactory,
    ProviderFactory,
    UserFactory,
    member,
    notice_in_representations,
)
from tests.helpers import assert_constant_queries
from tests.pdfs import page_size_mm, pdf_texts, save_page_png

URL = "/dashboard/board-report.pdf"


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def headline(found: dict[str, Any]) -> str:
    """The report's summary sentence, from the dashboard's own figures."""
    t = found["totals"]
    percent = "" if t["percent_met"] is None else f" ({t['percent_met']}%)"
    return (
        f"{t['applicable']} applicable obligations: {t['met']} met{percent}, "
        f"{t['in_progress']} in progress, {t['not_started']} not started, "
        f"{t['overdue']} overdue"
    )


@pytest.fixture
def demo(catalogue):  # type: ignore[no-untyped-def]
    call_command("load_demo", verbosity=0)
    return Organisation.objects.get(name="Northwind Media Group")


def test_the_report_is_one_a4_page_with_the_dashboards_figures(demo, django_user_model):
    manager = signed_in(django_user_model.objects.get(username="manager"))
    found = manager.get("/dashboard/").context["s"]
    response = manager.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        'attachment; filename="board-report-northwind-media-group-2026-11-24.pdf"'
    )
    [text] = pdf_texts(response.content)  # one page
    assert page_size_mm(response.content) == (210.0, 297.0)
    assert "Board report: Northwind Media Group" in text
    assert "the register on 24 Nov 2026" in text
    assert headline(found) in text
    assert f"{found['upcoming_total']} deadlines in the next 90 days" in text
    assert f"Overdue ({found['totals']['overdue']})" in text
    assert f"{len(found['notices'])} open Ofcom notices" in text
    at_risk = [p for p in found["providers"] if p["at_risk"]]
    assert f"{len(at_risk)} of {len(found['providers'])} providers at risk of a penalty" in text
    for provider in found["providers"]:
        assert money(provider["cap_gbp"]) in text  # "£270,000,000.00", from Decimal
    more = found["totals"]["overdue"] - SHOWN["overdue"]
    assert f"And {more} more overdue." in text
    assert "Generated 24 Nov 2026 10:00 (Europe/London) by manager" in text
    assert "Page 1 of 1" in text


def test_a_providers_report_has_the_dashboards_figures_for_that_provider(demo, django_user_model):
    manager = signed_in(django_user_model.objects.get(username="manager"))
    provider = Provider.objects.filter(organisation=demo).order_by("name").first()
    found = manager.get("/dashboard/", {"provider": provider.pk}).context["s"]
    response = manager.get(URL, {"provider": provider.pk, "as_of": "01/10/2026"})
    assert response.status_code == 200
    [text] = pdf_texts(response.content)
    past = manager.get("/dashboard/", {"provider": provider.pk, "as_of": "2026-10-01"})
    assert f"Board report: {provider.name}" in text
    assert "Provider of Northwind Media Group" in text
    assert "as it stood at the end of 1 Oct 2026" in text
    assert headline(past.context["s"]) in text
    assert found["totals"] != past.context["s"]["totals"]  # the as_of reached the figures


def test_a_large_organisation_still_fits_one_page_and_says_how_many_more(catalogue):
    org = OrganisationFactory(name="Big " + "Very Long Name " * 12)
    manager = member(org, role=Role.MANAGER, username="boss")
    owner = member(org, username="owner")
    grower(org, [owner])(600)
    services = list(Service.objects.filter(provider__organisation=org).order_by("pk"))
    Service.objects.filter(pk=services[0].pk).update(
        name=("A service whose name goes on " * 8)[:200]
    )
    for n, service in enumerate(services[:6]):
        notice_in_representations(service, owner, f"TN/{n}", TODAY)
    for n in range(6):
        ProviderFactory(organisation=org, name=f"Provider {n} with a name that goes on " * 4)
    client = signed_in(manager)
    found = client.get("/dashboard/").context["s"]
    response = client.get(URL)
    SHOTS.mkdir(parents=True, exist_ok=True)
    save_page_png(response.content, SHOTS / "board-report-large-page1.png")
    texts = pdf_texts(response.content)
    assert len(texts) == 1
    [text] = texts
    assert found["services_total"] > SHOWN["services"]
    assert found["totals"]["overdue"] > SHOWN["overdue"]
    assert found["upcoming_total"] > SHOWN["upcoming"]
    assert f"And {found['services_total'] - SHOWN['services']} more services." in text
    assert f"And {found['totals']['overdue'] - SHOWN['overdue']} more overdue." in text
    assert f"And {found['upcoming_total'] - SHOWN['upcoming']} more in the next 90 days." in text
    assert headline(found) in text
    assert f"And {len(found['notices']) - SHOWN['notices']} more open notices." in text
    assert f"And {len(found['providers']) - SHOWN['providers']} more providers." in text
    # The name people typed is in the file name only as a slug.
    assert response["Content-Disposition"] == (
        'attachment; filename="board-report-big-very-long-name-very-long-name-very-long-name-'
        'very-long-n-2026-11-24.pdf"'
    )


def test_the_report_costs_the_same_queries_however_big_the_organisation(catalogue):
    org = OrganisationFactory(name="Big")
    client = signed_in(member(org, role=Role.MANAGER, username="boss"))
    grow = grower(org, [member(org, username=f"owner{i}") for i in range(3)])

    def report() -> None:
        assert client.get(URL).status_code == 200

    assert_constant_queries(grow, report, (10, 600))


def test_the_report_is_on_the_access_log(world):
    client = signed_in(world.people["mona"])
    assert client.get(URL).status_code == 200
    row = AccessLog.objects.get(action=AccessAction.EXPORT)
    assert row.user == world.people["mona"]
    assert row.organisation == world.org
    assert row.description == "board-report-ours-2026-11-24.pdf (organisation: Ours)"


def test_each_role_that_reads_the_dashboard_reads_the_report(world):
    for name in ("ada", "casey", "mona", "root"):
        response = signed_in(world.people[name]).get(URL, {"organisation": world.org.pk})
        assert response.status_code == 200, name
    auditor = member(world.org, role=Role.AUDITOR, username="audrey")
    assert signed_in(auditor).get(URL).status_code == 200
    assert signed_in(UserFactory(username="nobody")).get(URL).status_code == 403
    assert Client().get(URL).status_code == 302  # to the sign-in page


def test_another_organisations_provider_or_organisation_is_a_404(world):
    other = ProviderFactory(name="Theirs Ltd")
    client = signed_in(world.people["mona"])
    assert client.get(URL, {"provider": other.pk}).status_code == 404
    assert client.get(URL, {"organisation": other.organisation_id}).status_code == 404
    # A provider named with an organisation it is not in: not found either.
    mine = {"provider": world.provider.pk, "organisation": other.organisation_id}
    assert client.get(URL, mine).status_code == 404
    assert not AccessLog.objects.filter(action=AccessAction.EXPORT).exists()


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ({"as_of": "yesterday"}, "as_of", "is not a date: use DD/MM/YYYY"),
        ({"as_of": "2027-01-01"}, "as_of", "The register's past, not its future."),
        ({"provider": "x"}, "provider", "An ID: a whole number."),
        ({"service": "1"}, "service", "Unknown parameter"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(world, query, field, words):
    response = signed_in(world.people["mona"]).get(URL, query)
    assert response.status_code == 400
    assert words in response.context["errors"][field]


def test_someone_who_sees_several_organisations_chooses_one(world):
    OrganisationFactory(name="Another")
    root = signed_in(world.people["root"])
    response = root.get(URL)
    assert response.status_code == 400
    assert "choose one" in response.context["errors"]["organisation"]
    assert root.get(URL, {"organisation": world.org.pk}).status_code == 200


def test_names_people_typed_never_reach_the_header_unslugged(world):
    world.org.name = 'Evil "Co"\r\nSet-Cookie: x=1'
    world.org.save()
    response = signed_in(world.people["mona"]).get(URL)
    header = response["Content-Disposition"]
    assert header == 'attachment; filename="board-report-evil-co-set-cookie-x1-2026-11-24.pdf"'


def test_the_dashboard_and_the_auditors_corner_link_to_the_report(world):
    client = signed_in(world.people["mona"])
    assert f'href="{URL}"' in client.get("/dashboard/").content.decode()
    page = client.get(f"/dashboard/services/{world.service.pk}/").content.decode()
    assert f'href="{URL}?provider={world.provider.pk}"' in page
    past = client.get("/dashboard/", {"as_of": "2026-10-01"}).content.decode()
    assert f'href="{URL}?as_of=2026-10-01"' in past
    corner = client.get("/admin/auditors-corner/").content.decode()
    assert f'action="{URL}"' in corner
    assert f'<option value="{world.provider.pk}">Northwind</option>' in corner


def test_pdfs_fetch_our_static_files_and_nothing_else():
    fetcher = StaticOnlyFetcher()
    icon = fetcher.fetch(f"{BASE_URL}static/obligations/favicon.svg")
    assert icon.read().startswith(b"<svg")
    for url in (
        "http://example.com/static/obligations/favicon.svg",
        "file:///etc/passwd",
        f"{BASE_URL}admin/",
        f"{BASE_URL}static/../settings.py",
    ):
        with pytest.raises(ValueError):
            fetcher.fetch(url)


def test_an_as_of_before_a_providers_start_is_still_one_page(world):
    response = signed_in(world.people["mona"]).get(URL, {"as_of": str(dt.date(2024, 1, 1))})
    [text] = pdf_texts(response.content)
    assert "as it stood at the end of 1 Jan 2024" in text
