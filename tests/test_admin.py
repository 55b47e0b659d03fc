"""The admin: tenancy (404 for another organisation), the register on save, the preview,
and constant query counts."""

import datetime as dt
import html

import pytest
from django.contrib import admin
from django.contrib.admin.sites import site
from django.contrib.admin.utils import get_fields_from_path
from django.urls import reverse

from obligations.access.models import Membership, Role
from obligations.access.selectors import scope
from obligations.adminkit import ScopedRelatedFilter
from obligations.catalogue.models import Feature, RegisterCategory
from obligations.providers.models import ChangeStatus, Service, SignificantChange
from obligations.register.models import Event, Obligation
from obligations.register.states import CycleTrigger, EventSource
from obligations.register.workflow import open_next_cycle
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, meet, member
from tests.helpers import assert_constant_queries


@pytest.fixture
def two_orgs(catalogue):  # type: ignore[no-untyped-def]
    ours, theirs = OrganisationFactory(name="Ours"), OrganisationFactory(name="Theirs")
    mine = applied_service(
        provider=ProviderFactory(organisation=ours, name="Our provider"), name="Our service"
    )
    other = applied_service(
        provider=ProviderFactory(organisation=theirs, name="Their provider"),
        name="Their secret service",
    )
    SignificantChange.objects.create(
        service=other,
        description="x",
        planned_for=TODAY,
        status=ChangeStatus.PLANNED,
        recorded_by=member(theirs),
    )
    return {
        "ours": ours,
        "theirs": theirs,
        "mine": mine,
        "other": other,
        "user": member(ours, username="casey"),
    }


def other_org_objects(theirs, other):  # type: ignore[no-untyped-def]
    obligation = other.obligations.first()
    return [
        theirs,
        other.provider,
        other,
        obligation,
        Membership.objects.filter(organisation=theirs).first(),
    ]


def admin_urls(obj):  # type: ignore[no-untyped-def]
    info = (obj._meta.app_label, obj._meta.model_name)
    urls = [reverse("admin:{}_{}_change".format(*info), args=[obj.pk])]
    if obj._meta.model in site._registry:
        urls.append(reverse("admin:{}_{}_history".format(*info), args=[obj.pk]))
        urls.append(reverse("admin:{}_{}_delete".format(*info), args=[obj.pk]))
    return urls


def test_every_admin_page_of_another_organisation_is_a_404(client, two_orgs):
    client.force_login(two_orgs["user"])
    for obj in other_org_objects(two_orgs["theirs"], two_orgs["other"]):
        if type(obj) not in site._registry:
            continue
        for url in admin_urls(obj):
            response = client.get(url)
            assert response.status_code == 404, (url, response.status_code)
    url = reverse("admin:obligations_service_change_plan", args=[two_orgs["other"].pk])
    assert client.get(url).status_code == 404
    # Simple-history's per-version pages too.
    history = two_orgs["other"].history.first()
    url = reverse(
        "admin:obligations_service_simple_history", args=[two_orgs["other"].pk, history.history_id]
    )
    assert client.get(url).status_code == 404


def test_changelists_and_autocomplete_show_only_our_organisation(client, two_orgs):
    client.force_login(two_orgs["user"])
    for model in ("organisation", "provider", "service", "obligation"):
        response = client.get(reverse(f"admin:obligations_{model}_changelist"))
        assert response.status_code == 200
        body = response.content.decode()
        assert "Their" not in body, model
        assert "Our" in body, model
    response = client.get(
        reverse("admin:obligations_obligation_changelist"),
        {"service__id__exact": two_orgs["other"].pk},
    )
    assert "Their" not in response.content.decode()
    # The service form offers only our providers.
    body = client.get(reverse("admin:obligations_service_add")).content.decode()
    assert "Our provider" in body and "Their provider" not in body


SEARCHES = ["records", "U2U-RECORDS", "s.", "our provider", '"chat rooms"', "chat assessment"]


@pytest.mark.parametrize("term", [*SEARCHES, "secret", "zzz", '"', '"chat', "chat'"])
def test_obligation_search_finds_what_djangos_own_search_would(rf, client, two_orgs, term):
    applied_service(provider=two_orgs["mine"].provider, name="Chat rooms")
    user = two_orgs["user"]
    client.force_login(user)
    response = client.get(reverse("admin:obligations_obligation_changelist"), {"q": term})
    found = set(response.context["cl"].queryset.values_list("pk", flat=True))
    # Django's search over the same search_fields, as the reference.
    model_admin = site._registry[Obligation]
    request = rf.get("/")
    request.user = user
    stock, _ = admin.ModelAdmin.get_search_results(
        model_admin, request, model_admin.get_queryset(request), term
    )
    assert found == set(stock.values_list("pk", flat=True))
    if term in SEARCHES:
        assert found


def test_obligation_search_matches_each_word_within_our_organisation(client, two_orgs):
    chat = applied_service(provider=two_orgs["mine"].provider, name="Chat rooms")
    client.force_login(two_orgs["user"])
    url = reverse("admin:obligations_obligation_changelist")

    def found(term):  # type: ignore[no-untyped-def]
        return set(client.get(url, {"q": term}).context["cl"].queryset)

    assert found("chat") == set(chat.obligations.all())
    assert found("chat U2U-RECORDS") == set(chat.obligations.filter(duty__code="U2U-RECORDS"))
    assert found("secret") == set()  # their service's name; none of their obligations


def test_filters_by_name_offer_what_the_objects_themselves_would(rf, two_orgs):
    applied_service(provider=two_orgs["mine"].provider, name="Another of ours")
    request = rf.get("/")
    request.user = two_orgs["user"]
    model_admin = site._registry[Obligation]
    for path in ("provider__organisation", "provider", "service"):
        field = get_fields_from_path(Obligation, path)[-1]
        spec = ScopedRelatedFilter(field, request, {}, Obligation, model_admin, path)
        related = field.remote_field.model
        ordering = spec.field_admin_ordering(field, request, model_admin) or ["name"]
        visible = scope(related.objects.all(), request.user).order_by(*ordering)
        assert spec.lookup_choices == [(obj.pk, str(obj)) for obj in visible], path
        assert "Their" not in str(spec.lookup_choices)


def test_an_auditor_reads_but_cannot_change(client, two_orgs):
    auditor = member(two_orgs["ours"], role=Role.AUDITOR, username="avery")
    client.force_login(auditor)
    url = reverse("admin:obligations_service_change", args=[two_orgs["mine"].pk])
    response = client.get(url)
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    assert client.post(url, {"name": "hijacked"}).status_code == 403
    assert client.get(reverse("admin:obligations_service_add")).status_code == 403


def test_adding_a_service_in_the_admin_creates_its_register(client, two_orgs):
    client.force_login(two_orgs["user"])
    provider = two_orgs["mine"].provider
    features = Feature.objects.filter(code__in=["e2ee_messaging", "recommender"])
    data = {
        "provider": provider.pk,
        "name": "New app",
        "user_to_user": "on",
        "uk_monthly_users": "120000",
        "children_likely_to_access": "",
        "launch_date": "",
        "features": [f.pk for f in features],
        "obligations-TOTAL_FORMS": "0",
        "obligations-INITIAL_FORMS": "0",
        "changes-TOTAL_FORMS": "0",
        "changes-INITIAL_FORMS": "0",
    }
    response = client.post(reverse("admin:obligations_service_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    service = Service.objects.get(name="New app")
    got = set(service.obligations.values_list("duty__code", flat=True))
    assert {"U2U-ILLEGAL-RA", "U2U-CHILD-RA", "CAA"} <= got
    event = Event.objects.filter(obligation__service=service).first()
    assert (event.actor, event.source) == (two_orgs["user"], EventSource.ADMIN)
    page = client.get(reverse("admin:obligations_service_change", args=[service.pk]))
    body = page.content.decode()
    assert "U2U-CHILD-RA" in body and "no children&#x27;s access assessment" in body


def test_preview_answers_without_saving_anything(client, two_orgs):
    client.force_login(two_orgs["user"])
    before = Service.objects.count()
    url = reverse("admin:obligations_service_preview")
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "name": "Planned search",
            "search": "on",
            "uk_monthly_users": "9000000",
            "children_likely_to_access": "false",
            "categories": [RegisterCategory.objects.get(code="2A").pk],
        },
    )
    body = response.content.decode()
    assert "SEARCH-RA-COPY-OFCOM" in body and "Category 2A" in body
    # A search service: s.121 reaches its public content, not private channels.
    assert "terrorism and CSEA content communicated publicly" in body
    assert "communicated privately" not in body
    assert Service.objects.count() == before
    bad = client.post(url, {"name": "x", "uk_monthly_users": "-3"})
    assert bad.status_code == 200 and "errorlist" in bad.content.decode()


def test_the_service_page_lists_the_notice_powers_that_could_reach_it(client, two_orgs):
    """What s.121 could require of this service, on what conditions (ss.122-125, 127), and
    whether the standards, guidance and accreditation it needs exist yet, dated."""
    client.force_login(two_orgs["user"])
    service = two_orgs["mine"]
    url = reverse("admin:obligations_service_change", args=[service.pk])
    service.features.set(Feature.objects.filter(code="direct_messaging"))
    messaging = html.unescape(client.get(url).content.decode())
    assert "Technology Notice: CSEA content communicated privately (s.121)" in messaging
    assert "whether communicated publicly or privately" in messaging
    assert "For this service:" not in messaging  # not end-to-end encrypted
    service.features.set(Feature.objects.filter(code="e2ee_messaging"))
    body = html.unescape(client.get(url).content.decode())
    assert (
        "<strong>For this service:</strong> This service's end-to-end encrypted messaging is a "
        "private channel within s.121(2)(a)(iii)-(iv) for CSEA content: the Act makes no "
        "exception for end-to-end encryption" in body
    )
    for condition in (
        "<li>s.121(1), s.124: Only if Ofcom consider it necessary and proportionate",
        "<li>s.122: First, a report from a skilled person appointed by Ofcom",
        "<li>s.123: Then a warning notice",
        "<li>s.125(12)-(13): Technology a notice requires must be accredited",
        "<li>s.127: Ofcom must publish guidance on how they propose to use these powers",
    ):
        assert condition in body
    for needed in (
        "Minimum standards of accuracy approved and published by the Secretary of State "
        "(s.125(13))",
        "Ofcom's guidance on its Technology Notice powers (s.127)",
        "Technology accredited as meeting those standards (s.125(12))",
    ):
        assert (
            f"{needed}: <strong>not published as far as the catalogue knows</strong> "
            "(checked 2026-12-06)."
        ) in body
    assert body.count("In place yet?") == 1  # listed once, with the public-content notice


def test_planning_a_significant_change_in_the_admin(client, two_orgs):
    client.force_login(two_orgs["user"])
    url = reverse("admin:obligations_service_change_plan", args=[two_orgs["mine"].pk])
    refused = client.post(url, {"description": "x", "planned_for": "2026-13-01"})
    assert refused.status_code == 200 and "errorlist" in refused.content.decode()
    response = client.post(
        url, {"description": "Add livestreaming", "planned_for": str(TODAY + dt.timedelta(days=40))}
    )
    assert response.status_code == 303
    assert two_orgs["mine"].changes.get().description == "Add livestreaming"


def test_obligation_changelist_costs_the_same_queries_at_20_and_400(client, catalogue):
    org = OrganisationFactory()
    user = member(org)
    provider = ProviderFactory(organisation=org)
    client.force_login(user)
    url = reverse("admin:obligations_obligation_changelist")

    def grow(size):  # type: ignore[no-untyped-def]
        while Obligation.objects.count() < size:
            applied_service(provider=provider)

    def measure():  # type: ignore[no-untyped-def]
        response = client.get(url, {"due": "overdue"})
        assert response.status_code == 200
        response = client.get(url)
        assert response.status_code == 200

    assert_constant_queries(grow, measure, sizes=(20, 400))


@pytest.mark.parametrize(
    "params", [{}, {"o": "-6.3"}, {"q": "Alpha"}], ids=["its order", "sorted", "searched"]
)
def test_obligation_changelist_pages_follow_the_lists_order(client, catalogue, params, monkeypatch):
    org = OrganisationFactory()
    for name in ("Zeta", "Alpha", "Mu"):  # created out of the list's alphabetical order
        applied_service(provider=ProviderFactory(organisation=org, name=name), name=f"{name} app")
    client.force_login(member(org))
    monkeypatch.setattr(site._registry[Obligation], "list_per_page", 3)
    url = reverse("admin:obligations_obligation_changelist")
    cl = client.get(url, params).context["cl"]
    in_order = list(cl.queryset.values_list("pk", flat=True))
    assert cl.paginator.num_pages > 1
    if not params:
        assert in_order != sorted(in_order)
    for number in range(1, cl.paginator.num_pages + 1):
        page = client.get(url, {**params, "p": number}).context["cl"].result_list
        assert [o.pk for o in page] == in_order[(number - 1) * 3 : number * 3]


def test_a_service_page_costs_the_same_queries_however_many_obligations(client, catalogue):
    org = OrganisationFactory()
    client.force_login(member(org))
    provider = ProviderFactory(organisation=org)
    small = applied_service(provider=provider, user_to_user=False, search=True)
    large = applied_service(provider=provider, categories=["1"], children_likely_to_access=True)
    by_size = {service.obligations.count(): service for service in (small, large)}
    sizes = sorted(by_size)
    assert sizes[1] > sizes[0] + 10
    shown = {}

    def grow(size):  # type: ignore[no-untyped-def]
        shown["url"] = reverse("admin:obligations_service_change", args=[by_size[size].pk])

    def measure():  # type: ignore[no-untyped-def]
        assert client.get(shown["url"]).status_code == 200

    # Two services, not one grown: a service's obligations follow from its profile.
    assert_constant_queries(grow, measure, sizes=(sizes[0], sizes[1]))


def test_an_obligation_page_costs_the_same_queries_however_long_its_history(client, catalogue):
    org = OrganisationFactory()
    alice, bob = member(org, username="alice"), member(org, username="bob")
    client.force_login(alice)
    service = applied_service(provider=ProviderFactory(organisation=org))
    obligation = service.obligations.get(duty__code="U2U-RECORDS")
    url = reverse("admin:obligations_obligation_change", args=[obligation.pk])

    def grow(size):  # type: ignore[no-untyped-def]
        while obligation.cycles.count() < size:
            obligation.refresh_from_db()
            meet(obligation, alice, bob)  # each cycle met, then the next one opened
            open_next_cycle(
                actor=alice,
                cycle=obligation.cycles.latest("pk"),
                due=TODAY + dt.timedelta(days=365),
                trigger=CycleTrigger.RECURRENCE,
                note="Yearly review.",
                source=EventSource.ADMIN,
            )

    assert_constant_queries(grow, lambda: client.get(url), sizes=(2, 6))


def test_service_changelist_costs_the_same_queries_at_two_sizes(client, catalogue):
    org = OrganisationFactory()
    user = member(org)
    provider = ProviderFactory(organisation=org)
    client.force_login(user)

    def grow(size):  # type: ignore[no-untyped-def]
        while Service.objects.count() < size:
            applied_service(provider=provider, categories=["2B"])

    assert_constant_queries(
        grow, lambda: client.get(reverse("admin:obligations_service_changelist")), (3, 30)
    )
