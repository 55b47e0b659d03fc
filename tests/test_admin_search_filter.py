"""The register's changelist at scale: one count of the register a page, and filters by
service and provider that become a search box past a threshold (obligations/adminsearch.py),
with their tenant-scoped JSON endpoint."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from obligations import adminsearch
from obligations.access.models import Role
from obligations.register.models import Obligation
from tests.factories import (
    OrganisationFactory,
    ProviderFactory,
    ServiceFactory,
    UserFactory,
    applied_service,
    member,
)
from tests.helpers import assert_constant_queries

REGISTER = "/admin/obligations/obligation/"
CHOICES = "/admin/obligations/obligation/choices/service/"


@pytest.fixture
def many(catalogue, monkeypatch):  # type: ignore[no-untyped-def]
    """Two organisations, ours past a threshold of 3 services: its register's filters by
    provider and service are search boxes; theirs has a service named like ours."""
    monkeypatch.setattr(adminsearch, "SEARCH_THRESHOLD", 3)
    ours, theirs = OrganisationFactory(name="Ours"), OrganisationFactory(name="Theirs")
    provider = ProviderFactory(organisation=ours, name="Our provider")
    chat = applied_service(provider=provider, name="Chat rooms")
    applied_service(provider=provider, name="Photo sharing")
    for name in ("Chat archive", "Forum", "Search engine"):
        ServiceFactory(provider=provider, name=name)
    for n in range(4):
        ProviderFactory(organisation=ours, name=f"Our provider {n}")
    secret = applied_service(
        provider=ProviderFactory(organisation=theirs, name="Their provider"),
        name="Chat secrets",
    )
    return {
        "ours": ours,
        "theirs": theirs,
        "chat": chat,
        "secret": secret,
        "user": member(ours, username="casey"),
        "them": member(theirs, username="tess"),
    }


def sidebar(response) -> str:  # type: ignore[no-untyped-def]
    body = response.content.decode()
    return body[body.index('id="changelist-filter"') :]


def service_filter(response) -> str:  # type: ignore[no-untyped-def]
    """The service filter's part of the sidebar, up to the next filter."""
    side = sidebar(response)
    start = side.index('data-filter-title="service"')
    return side[start : side.index("</details>", start)]


def count_statements(response_maker) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        response_maker()
    return sum("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)


def test_the_register_is_counted_once_a_page_and_reads_as_before(client, catalogue):
    org = OrganisationFactory()
    provider = ProviderFactory(organisation=org)
    applied_service(provider=provider, name="Chat rooms")
    applied_service(provider=provider, name="Search engine")
    client.force_login(member(org))
    total = Obligation.objects.filter(provider=provider).count()
    assert count_statements(lambda: client.get(REGISTER)) == 1
    whole = client.get(REGISTER)
    assert whole.context["cl"].result_count == total
    body = whole.content.decode()
    assert f"{total} obligations" in body
    assert "Show all" not in body and "results (" not in body
    # Filtered: the filtered count, and the way back to the whole list.
    searched = client.get(REGISTER, {"q": "Chat"})
    found = searched.context["cl"].result_count
    assert 0 < found < total
    assert re.search(
        rf"{found} results\s*\(<a href=\"\?\">Show all</a>\)", searched.content.decode()
    )
    assert count_statements(lambda: client.get(REGISTER, {"q": "Chat"})) == 1


@pytest.mark.parametrize("path", ["/admin/obligations/reminder/", "/admin/obligations/accesslog/"])
def test_the_other_lists_that_grow_with_the_register_are_counted_once(client, catalogue, path):
    """Reminders (900,000 at a million obligations) and the access log: one COUNT a page."""
    org = OrganisationFactory()
    applied_service(provider=ProviderFactory(organisation=org))
    client.force_login(member(org, role=Role.ADMIN))
    assert client.get(path).status_code == 200
    assert count_statements(lambda: client.get(path)) == 1
    assert count_statements(lambda: client.get(path, {"q": "x"})) == 1


def test_below_the_threshold_the_filter_lists_every_name(client, many, monkeypatch):
    monkeypatch.setattr(adminsearch, "SEARCH_THRESHOLD", 50)
    client.force_login(many["user"])
    part = service_filter(client.get(REGISTER))
    for name in ("Chat rooms", "Photo sharing", "Chat archive", "Forum", "Search engine"):
        assert f">{name}</a>" in part
    assert "<form" not in part and "Chat secrets" not in part


def test_past_the_threshold_the_filter_is_a_search_box_with_no_names(client, many):
    client.force_login(many["user"])
    response = client.get(REGISTER, {"due": "overdue", "o": "2"})
    part = service_filter(response)
    assert 'name="service_name"' in part
    assert f'data-choices="{CHOICES}"' in part
    assert "Chat rooms" not in part and "Forum" not in part
    # The box keeps the list's other filters and its order.
    assert '<input type="hidden" name="due" value="overdue">' in part
    assert '<input type="hidden" name="o" value="2">' in part
    # The provider filter too; the organisation's, below the threshold, is still a list.
    side = sidebar(response)
    assert 'name="provider_name"' in side and ">Our provider 2</a>" not in side
    assert 'name="provider__organisation_name"' not in side


def test_typing_part_of_a_name_without_scripts_lists_its_obligations_and_offers_the_names(
    client, many
):
    client.force_login(many["user"])
    response = client.get(REGISTER, {"service_name": " chat ", "due": "overdue"})
    listed = set(response.context["cl"].queryset)
    assert listed == set(many["chat"].obligations.filter(pk__in=[o.pk for o in listed]))
    every = client.get(REGISTER, {"service_name": "chat"}).context["cl"].queryset
    assert set(every) == set(many["chat"].obligations.all())  # not their "Chat secrets"
    part = service_filter(response)
    assert 'value=" chat "' in part  # what was typed, kept
    links = dict(
        (unescape(name), unescape(href))
        for href, name in re.findall(r'<a href="([^"]*)">([^<]*)</a>', part)
    )
    assert set(links) == {"All", "Chat archive", "Chat rooms", "-"}
    picked = parse_qs(urlsplit(links["Chat rooms"]).query)
    assert picked == {"service__id__exact": [str(many["chat"].pk)], "due": ["overdue"]}
    assert '<li class="selected">' not in part  # narrowed by name: not "All"


def test_the_chosen_service_shows_by_name_and_alone(client, many):
    client.force_login(many["user"])
    chat = many["chat"]
    response = client.get(REGISTER, {"service__id__exact": chat.pk})
    assert set(response.context["cl"].queryset) == set(chat.obligations.all())
    part = service_filter(response)
    assert re.search(r'<li class="selected">\s*<a href="[^"]*">Chat rooms</a>', part)
    assert "Chat archive" not in part and "Forum" not in part
    # Another organisation's service is no choice of ours, and lists nothing.
    theirs = client.get(REGISTER, {"service__id__exact": many["secret"].pk})
    assert list(theirs.context["cl"].queryset) == []
    assert "Chat secrets" not in theirs.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"service_name": "x" * 10_000},
        {"service_name": "Chat\r\nrooms"},
        {"service_name": "Chat\x00"},
        {"service_name": "NaN"},
        {"service_name": "%_\\"},
        {"service_name": ""},
        {"service__id__exact": "NaN"},
        {"service__id__exact": "99999999999999999999999"},
        {"service__id__exact": "-1"},
        {"provider_name": "Our\u2028provider"},
    ],
)
def test_what_cannot_be_a_name_lists_nothing_and_is_never_an_error(client, many, params):
    client.force_login(many["user"])
    response = client.get(REGISTER, params)
    if response.status_code == 302:  # a filter value Django itself refuses
        assert response["Location"] == f"{REGISTER}?e=1"
        return
    assert response.status_code == 200
    listed = list(response.context["cl"].queryset)
    if params.get("service_name") != "":
        assert listed == []
    typed = next(iter(params.values()))
    if "x" * 100 in typed:
        assert "No name contains that" in service_filter(response)


def test_the_choices_endpoint_offers_only_the_users_organisations_names(client, many):
    client.force_login(many["user"])
    answer = client.get(CHOICES, {"term": "chat"})
    assert answer.status_code == 200
    assert answer.json() == {
        "results": [
            {
                "id": many["chat"].provider.services.get(name="Chat archive").pk,
                "text": "Chat archive",
            },
            {"id": many["chat"].pk, "text": "Chat rooms"},
        ],
        "more": False,
    }
    # Their member sees theirs alone; an admin of ours, ours alone; an operator, both.
    client.force_login(many["them"])
    assert [r["text"] for r in client.get(CHOICES, {"term": "chat"}).json()["results"]] == [
        "Chat secrets"
    ]
    client.force_login(member(many["ours"], role=Role.ADMIN, username="ada"))
    texts = [r["text"] for r in client.get(CHOICES, {"term": "chat"}).json()["results"]]
    assert texts == ["Chat archive", "Chat rooms"]
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    texts = [r["text"] for r in client.get(CHOICES, {"term": "chat"}).json()["results"]]
    assert texts == ["Chat archive", "Chat rooms", "Chat secrets"]
    providers = client.get("/admin/obligations/obligation/choices/provider/", {"term": "our"})
    assert len(providers.json()["results"]) == 5


def test_the_choices_endpoint_is_for_signed_in_members_and_its_filters_only(client, many):
    assert client.get(CHOICES, {"term": "chat"}).status_code == 302  # to the sign-in page
    client.force_login(UserFactory(is_staff=True))  # a member of no organisation
    assert client.get(CHOICES, {"term": "chat"}).status_code == 403
    client.force_login(many["user"])
    for field in ("owner", "duty", "provider__organisation__name", "nothing"):
        url = f"/admin/obligations/obligation/choices/{field}/"
        assert client.get(url, {"term": "a"}).status_code == 404, field


@pytest.mark.parametrize(
    "term", ["", "   ", "x" * 100_000, "Chat\r\nrooms", "Chat\x00", "NaN", "%", "_", "\\"]
)
def test_the_choices_endpoint_answers_bad_terms_with_nothing(client, many, term):
    client.force_login(many["user"])
    answer = client.get(CHOICES, {"term": term})
    assert answer.status_code == 200
    assert answer.json() == {"results": [], "more": False}


def test_the_choices_endpoint_gives_a_few_at_a_time(client, many, monkeypatch):
    monkeypatch.setattr(adminsearch, "MATCHES_SHOWN", 2)
    client.force_login(many["user"])
    answer = client.get(CHOICES, {"term": "a"}).json()  # four of our names hold an "a"
    assert [r["text"] for r in answer["results"]] == ["Chat archive", "Chat rooms"]
    assert answer["more"] is True
    side = service_filter(client.get(REGISTER, {"service_name": "a"}))
    assert "The first 2 names containing “a” are below" in side


def test_the_search_filter_and_its_endpoint_cost_the_same_queries_at_two_sizes(client, many):
    client.force_login(many["user"])
    provider = many["chat"].provider
    chat = many["chat"]

    def grow(size):  # type: ignore[no-untyped-def]
        while provider.services.count() < size:
            n = provider.services.count()
            applied_service(provider=provider, name=f"Chat room {n}")

    def measure():  # type: ignore[no-untyped-def]
        for params in (
            {},
            {"service__id__exact": chat.pk, "service_name": "chat"},
            {"provider_name": "our", "due": "overdue"},
            {"service_name": "chat", "_facets": "True"},  # with each choice's count
        ):
            assert client.get(REGISTER, params).status_code == 200
        assert client.get(CHOICES, {"term": "chat"}).status_code == 200

    assert_constant_queries(grow, measure, sizes=(6, 12))


def test_the_services_list_searches_its_providers_by_name_too(client, many):
    client.force_login(many["user"])
    url = "/admin/obligations/service/"
    body = client.get(url).content.decode()
    assert 'name="provider_name"' in body and ">Our provider 2</a>" not in body
    listed = client.get(url, {"provider_name": "our provider"}).context["cl"].queryset
    assert {s.name for s in listed} == {
        "Chat rooms",
        "Photo sharing",
        "Chat archive",
        "Forum",
        "Search engine",
    }
    answer = client.get(f"{url}choices/provider/", {"term": "provider"}).json()
    assert [r["text"] for r in answer["results"]] == [
        "Our provider",
        *(f"Our provider {n}" for n in range(4)),
    ]
