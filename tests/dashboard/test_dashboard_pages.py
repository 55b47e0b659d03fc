"""The dashboard pages: the figures a manager sees on a small register worked out by hand,
the links behind them listing exactly what they count, and the refusals (bad filters 400,
another organisation's service 404, no membership 403)."""

import datetime as dt
import re
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse, set_script_prefix

from obligations.access.models import Role
from obligations.links import object_url, page_url
from obligations.providers.models import RevenueBasis, RevenueKind, RevenuePeriod
from obligations.register.actions import assign_owner, set_due_date
from obligations.register.models import Obligation
from obligations.register.workflow import do_mark_not_applicable, do_start
from tests.bulk import grower
from tests.conftest import NOW, TODAY
from tests.factories import (
    SOURCE,
    UNGATED,
    OrganisationFactory,
    ProviderFactory,
    UserFactory,
    applied_service,
    at,
    due_in,
    keep_only,
    meet,
    member,
    notice_in_representations,
)
from tests.helpers import assert_constant_queries

CHANGELIST = "/admin/obligations/obligation/"
KEEP = UNGATED


@pytest.fixture
def register(catalogue, clock):  # type: ignore[no-untyped-def]
    """Two services of one organisation, set up on 10 Sep 2026; by hand, today (24 Nov):

    Chat: A met (on 15 Sep); B in progress, due in 10 days; C not started, due in 40 days;
          D in progress, 5 days overdue; E not started, 20 days overdue, owned by rita.
    Forum: F not started, 3 days overdue.
    Totals: 6 applicable, 1 met, 1 in progress, 1 not started, 3 overdue; 16.7% met.
    Provider-wide obligations and every other duty are closed as not applicable.
    """
    clock.move_to(at(dt.date(2026, 9, 10)))
    org = OrganisationFactory(name="Ours")
    casey = member(org, username="casey")
    rita = member(org, username="rita")
    manager = member(org, role=Role.MANAGER, username="mo")
    provider = ProviderFactory(organisation=org, name="Ours Ltd")
    chat = applied_service(provider=provider, name="Chat")
    forum = applied_service(provider=provider, name="Forum")
    for ob in Obligation.objects.filter(provider=provider, service__isnull=True):
        do_mark_not_applicable(
            actor=casey, cycle=ob.current_cycle, source=SOURCE, reason="Out of scope."
        )
    a, b, c, d, e = keep_only(chat.obligations, KEEP, casey)
    [f] = keep_only(forum.obligations, KEEP[:1], casey)
    for ob, days in ((b, 10), (c, 40), (d, -5), (e, -20), (f, -3)):
        due_in(ob, days, casey, TODAY)
    clock.move_to(at(dt.date(2026, 9, 15)))
    meet(a, casey, rita)
    clock.move_to(NOW)
    for ob in (b, d):
        do_start(actor=casey, cycle=ob.current_cycle, source=SOURCE)
    assign_owner(actor=casey, obligation=e, owner=rita, source=SOURCE)
    client = Client()
    client.force_login(manager)
    return {
        "org": org,
        "provider": provider,
        "chat": chat,
        "forum": forum,
        "manager": manager,
        "rita": rita,
        "casey": casey,
        "client": client,
        "obligations": {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f},
    }


class Anchors(HTMLParser):
    """Every link of a page: (id, href, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            values = dict(attrs)
            self._open.append([values.get("id") or "", values.get("href") or "", ""])

    def handle_data(self, data: str) -> None:
        for anchor in self._open:
            anchor[2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open:
            ident, href, text = self._open.pop()
            self.found.append((ident, href, " ".join(text.split())))


def anchors(response) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    parser = Anchors()
    parser.feed(response.content.decode())
    return parser.found


def figure_links(response) -> dict[str, tuple[int, dict[str, list[str]]]]:  # type: ignore[no-untyped-def]
    """The headline figures by id: (the number shown, the link's query)."""
    return {
        ident.removeprefix("total-"): (int(text.split()[0]), parse_qs(urlsplit(href).query))
        for ident, href, text in anchors(response)
        if ident.startswith("total-")
    }


def counted_links(response) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """Every link to the admin obligations list whose text starts with a number."""
    found = []
    for _, href, text in anchors(response):
        number = re.match(r"\d+", text)
        if href.startswith(CHANGELIST + "?") and number:
            found.append((int(number.group()), href))
    return found


def listed(client, href: str) -> int:  # type: ignore[no-untyped-def]
    response = client.get(href)
    assert response.status_code == 200, href
    return int(response.context["cl"].result_count)


def test_the_manager_sees_the_figures_worked_out_by_hand(register):
    response = register["client"].get("/dashboard/")
    assert response.status_code == 200
    figures = figure_links(response)
    assert {k: n for k, (n, _) in figures.items()} == {
        "met": 1,
        "in_progress": 1,
        "not_started": 1,
        "overdue": 3,
        "applicable": 6,
    }
    assert response.context["s"]["totals"]["percent_met"] == Decimal("16.7")
    assert "16.7%" in response.content.decode()
    _, overdue_query = figures["overdue"]
    assert overdue_query == {"state": ["overdue"], "applicable__exact": ["1"]}
    # Per service: the links carry the service and the state.
    chat, forum = register["chat"].pk, register["forum"].pk
    links = set(counted_links(response))
    assert (2, f"{CHANGELIST}?applicable__exact=1&service__id__exact={chat}&state=overdue") in links
    assert (
        1,
        f"{CHANGELIST}?applicable__exact=1&service__id__exact={forum}&state=overdue",
    ) in links
    assert (1, f"{CHANGELIST}?applicable__exact=1&service__id__exact={chat}&state=met") in links
    # The overdue list: oldest first, with the owner and the days overdue.
    overdue = response.context["s"]["overdue"]
    ob = register["obligations"]
    assert [(r["id"], r["days_overdue"], r["r_owner"]) for r in overdue] == [
        (ob["e"].pk, 20, "rita"),
        (ob["d"].pk, 5, None),
        (ob["f"].pk, 3, None),
    ]


def test_every_counted_link_lists_as_many_obligations_as_it_says(register):
    client = register["client"]
    response = client.get("/dashboard/")
    links = counted_links(response)
    # 5 headline figures, and 5 per service for two services; the overdue heading repeats one.
    assert len(links) >= 15
    for number, href in links:
        assert listed(client, href) == number, href


def test_filters_narrow_the_figures_and_their_links(register):
    client, rita = register["client"], register["rita"]
    response = client.get("/dashboard/", {"owner": rita.pk})
    assert response.status_code == 200
    figures = figure_links(response)
    count, query = figures["overdue"]
    assert count == 1
    assert query["owner__id__exact"] == [str(rita.pk)]
    assert listed(client, response.context["links"]["overdue"]) == 1
    provider = register["provider"]
    response = client.get("/dashboard/", {"provider": provider.pk})
    assert figure_links(response)["applicable"][1]["provider__id__exact"] == [str(provider.pk)]


def test_a_service_page_shows_that_service_alone(register):
    client, forum = register["client"], register["forum"]
    response = client.get(f"/dashboard/services/{forum.pk}/")
    assert response.status_code == 200
    figures = figure_links(response)
    assert figures["overdue"][0] == 1
    assert figures["applicable"][0] == 1
    assert figures["overdue"][1]["service__id__exact"] == [str(forum.pk)]
    for number, href in counted_links(response):
        assert listed(client, href) == number, href


def test_the_page_as_of_a_past_date_says_its_links_show_today(register):
    response = register["client"].get("/dashboard/", {"as_of": "2026-09-12"})
    assert response.status_code == 200
    figures = figure_links(response)
    # On 12 Sep A was not yet met (15 Sep) and nothing was in progress.
    assert figures["met"][0] == 0
    assert figures["in_progress"][0] == 0
    assert figures["applicable"][0] == 6
    assert "the lists they link to show today's register" in response.content.decode()
    assert "show today's register" not in register["client"].get("/dashboard/").content.decode()


def test_as_of_is_typed_the_uk_way_and_shown_back_so(register):
    typed = register["client"].get("/dashboard/", {"as_of": "12/09/2026"})
    linked = register["client"].get("/dashboard/", {"as_of": "2026-09-12"})
    assert figure_links(typed) == figure_links(linked)
    for response in (typed, linked):
        assert 'name="as_of" value="12/09/2026"' in response.content.decode()


def test_every_chart_is_an_image_with_a_title_and_a_description(register):
    html = register["client"].get("/dashboard/").content.decode()
    svgs = re.findall(r"<svg[^>]*>.*?</svg>", html, flags=re.S)
    charts = [svg for svg in svgs if 'role="img"' in svg]
    # Two service bars, the timeline, the trend.
    assert len(charts) == 4
    for svg in charts:
        assert re.search(r'<svg[^>]*role="img"[^>]*><title>[^<]+</title><desc>[^<]+</desc>', svg)
    # The rest are legend samples, hidden from assistive technology (the words say it all).
    assert all('aria-hidden="true"' in svg for svg in svgs if svg not in charts)
    # Colour is never alone: the states are named in words in the heatmap's cells.
    assert '<span class="sr">Overdue</span>' in html
    assert '<span class="sr">Met</span>' in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"as_of": "11/24/2026"}, "is not a date: use DD/MM/YYYY"),
        ({"as_of": "30/02/2026"}, "is not a date: use DD/MM/YYYY"),
        ({"as_of": "2026-02-30"}, "is not a date: use DD/MM/YYYY"),
        ({"as_of": "25/11/2026"}, "The register&#x27;s past, not its future."),
        ({"as_of": "2026-11-25"}, "as_of"),
        ({"owner": "x"}, "owner"),
        ({"service": "999999"}, "No service 999999 among those you can see."),
    ],
)
def test_bad_filters_are_a_400_that_says_why(register, query, message):
    response = register["client"].get("/dashboard/", query)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_another_organisations_ids_are_refused(register):
    theirs = applied_service(name="Theirs")
    client = register["client"]
    assert client.get(f"/dashboard/services/{theirs.pk}/").status_code == 404
    assert client.get("/dashboard/services/999999/").status_code == 404
    response = client.get("/dashboard/", {"service": theirs.pk})
    assert response.status_code == 400
    response = client.get("/dashboard/", {"organisation": theirs.provider.organisation_id})
    assert response.status_code == 400


def test_a_user_with_no_membership_is_refused_and_a_stranger_must_sign_in(register):
    client = Client()
    client.force_login(UserFactory(username="nobody"))
    assert client.get("/dashboard/").status_code == 403
    assert client.get(f"/dashboard/services/{register['chat'].pk}/").status_code == 403
    anonymous = Client().get("/dashboard/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")


def test_notices_and_exposure_are_spelled_out(register):
    chat, casey = register["chat"], register["casey"]
    RevenuePeriod.objects.create(
        provider=register["provider"],
        kind=RevenueKind.ACCOUNTING,
        start=dt.date(2025, 1, 1),
        end=dt.date(2025, 12, 31),
        amount_gbp=Decimal("260000000.00"),
        basis=RevenueBasis.AUDITED,
    )
    notice_in_representations(chat, casey, "TN/1", TODAY)
    html = register["client"].get("/dashboard/").content.decode()
    assert 'class="window"' in html
    assert "In its representations window" in html
    assert "£26,000,000.00" in html  # 10% of £260m, above the £18m floor
    assert "At risk:" in html
    assert "3 overdue obligation(s)" in html


def test_the_admin_links_to_the_dashboards(register):
    client = register["client"]
    assert 'href="/dashboard/"' in client.get("/admin/").content.decode()
    chat = register["chat"]
    change = client.get(f"/admin/obligations/service/{chat.pk}/change/").content.decode()
    assert f'href="/dashboard/services/{chat.pk}/"' in change


def test_the_page_costs_the_same_queries_however_big_the_register(catalogue):
    org = OrganisationFactory(name="Big")
    manager = member(org, role=Role.MANAGER, username="boss")
    owners = [member(org, username=f"owner{i}") for i in range(3)]
    client = Client()
    client.force_login(manager)
    grow = grower(org, owners)

    def page() -> None:
        assert client.get("/dashboard/").status_code == 200

    assert_constant_queries(grow, page, (10, 600))


def test_an_obligation_with_no_due_date_is_counted_in_a_state(register):
    set_due_date(
        actor=register["casey"],
        cycle=register["obligations"]["c"].current_cycle,
        due=None,
        reason="No fixed date.",
        source=SOURCE,
    )
    figures = figure_links(register["client"].get("/dashboard/"))
    assert figures["applicable"][0] == 6
    assert figures["not_started"][0] == 1


@pytest.mark.parametrize(
    "name",
    [
        "admin:obligations_obligation_change",
        "dashboard:service",
        "admin:obligations_service_measures",
    ],
)
def test_links_reversed_once_are_the_links_reverse_gives(name):
    for prefix in ("/", "/tracker/"):
        set_script_prefix(prefix)
        try:
            assert [object_url(name, pk) for pk in (1, 42, 10**12)] == [
                reverse(name, args=[pk]) for pk in (1, 42, 10**12)
            ]
            changelist = "admin:obligations_obligation_changelist"
            assert page_url(changelist) == reverse(changelist)
        finally:
            set_script_prefix("/")


def heatmap_cells(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """The heatmap's rows: duty code -> each service's cell, by its title."""
    table = re.search(r'<table class="heatmap">.*?</table>', response.content.decode(), re.S)
    assert table
    return {
        duty: re.findall(r'<td class="tint-[0-9a-f]{6}" title="([^"]+)">', cells)
        for duty, cells in re.findall(
            r'<th scope="row">([^<]+)</th>(.*?)</tr>', table.group(), flags=re.S
        )
    }


def test_the_heatmap_shows_each_services_state_of_each_duty(register):
    obs = register["obligations"]
    cells = heatmap_cells(register["client"].get("/dashboard/"))
    # Services across, Chat then Forum; Forum keeps only the first duty (F, 3 days overdue).
    assert {duty: cells[duty] for duty in cells if cells[duty]} == {
        obs["a"].duty.code: ["Met", "Overdue"],
        obs["b"].duty.code: ["In progress", "Does not apply"],
        obs["c"].duty.code: ["Not started", "Does not apply"],
        obs["d"].duty.code: ["Overdue", "Does not apply"],
        obs["e"].duty.code: ["Overdue", "Does not apply"],
    }


def test_risk_tables_show_each_level_in_words_and_unrated_harms_as_such():
    from obligations.dashboard.charts import risk_tables

    levels = [
        {"rank": 1, "code": "low", "label": "Low"},
        {"rank": 3, "code": "high", "label": "High"},
    ]
    risks = [
        {"service": "Chat", "family": "illegal", "levels": {"grooming": 3, "fraud": 1}},
        {"service": "Forum <b>", "family": "illegal", "levels": {"fraud": 3}},
    ]
    [table] = risk_tables(risks, levels, {"grooming": "Grooming", "fraud": "Fraud"})
    assert table["services"] == ["Chat", "Forum <b>"]
    assert [(row["harm"], str(row["cells"])) for row in table["rows"]] == [
        ("Fraud", '<td class="level-low">Low</td><td class="level-high">High</td>'),
        ("Grooming", '<td class="level-high">High</td><td>Not rated</td>'),
    ]
