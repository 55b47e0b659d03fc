"""The dashboard's figures, pinned against numbers worked out by hand on fixed data, and the
cost of computing them, which must not grow with the register."""

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from obligations.access.models import Role
from obligations.dashboard.models import ComplianceCount, ComplianceFill
from obligations.dashboard.queries import FilterError, Filters, summary
from obligations.providers.selectors import overdue_obligations
from obligations.register.actions import assign_owner
from obligations.register.evidence import add_evidence_file, add_evidence_link, purge_evidence
from obligations.register.models import Obligation
from obligations.register.states import EventSource
from obligations.register.workflow import do_start
from obligations.tasks import fill_compliance_counts
from tests.bulk import grower
from tests.conftest import NOW, TODAY
from tests.factories import (
    UNGATED,
    OrganisationFactory,
    ProviderFactory,
    applied_service,
    at,
    due_in,
    keep_only,
    meet,
    member,
)
from tests.helpers import assert_constant_queries, client_for

SYSTEM = EventSource.ADMIN
KEEP = UNGATED


@pytest.fixture
def fixed(catalogue, clock):  # type: ignore[no-untyped-def]
    """Five live obligations, worked out by hand:

    A met on 15 Sep; B in progress, due in 10 days; C not started, due in 40 days;
    D in progress, 5 days overdue; E not started, 20 days overdue. Everything else does not
    apply. The service was set up on 10 Sep 2026.
    """
    clock.move_to(at(dt.date(2026, 9, 10)))
    org = OrganisationFactory(name="Ours")
    casey = member(org, username="casey")
    rita = member(org, username="rita")
    manager = member(org, role=Role.MANAGER, username="mo")
    service = applied_service(provider=ProviderFactory(organisation=org), name="Chat")
    a, b, c, d, e = keep_only(Obligation.objects.filter(provider__organisation=org), KEEP, casey)
    for ob, days in ((b, 10), (c, 40), (d, -5), (e, -20)):
        due_in(ob, days, casey, TODAY)
    clock.move_to(at(dt.date(2026, 9, 15)))
    meet(a, casey, rita)
    clock.move_to(NOW)
    for ob in (b, d):
        do_start(actor=casey, cycle=ob.current_cycle, source=SYSTEM)
    assign_owner(actor=casey, obligation=e, owner=rita, source=SYSTEM)
    return {
        "org": org,
        "service": service,
        "manager": manager,
        "ids": [x.pk for x in (a, b, c, d, e)],
    }


def test_the_figures_are_the_ones_worked_out_by_hand(fixed):
    figures = summary(fixed["manager"], Filters(), today=TODAY)
    _, b, c, d, e = fixed["ids"]
    assert {
        k: figures["totals"][k]
        for k in ("applicable", "met", "in_progress", "not_started", "overdue")
    } == {
        "applicable": 5,
        "met": 1,
        "in_progress": 1,
        "not_started": 1,
        "overdue": 2,
    }
    assert figures["totals"]["percent_met"] == Decimal("20.0")
    [chat] = figures["services"]
    assert (chat["name"], chat["met"], chat["overdue"], chat["percent_met"]) == (
        "Chat",
        1,
        2,
        Decimal("20.0"),
    )
    assert [(r["id"], r["days_overdue"], r["r_owner"]) for r in figures["overdue"]] == [
        (e, 20, "rita"),
        (d, 5, None),
    ]
    assert [r["id"] for r in figures["upcoming"]] == [b, c]
    cells = figures["heatmap"]["rows"][0]["cells"]
    assert [cells[code] for code in KEEP] == [
        "met",
        "in_progress",
        "not_started",
        "overdue",
        "overdue",
    ]
    trend = {p["month_end"]: (p["met"], p["applicable"], p["percent"]) for p in figures["trend"]}
    assert len(trend) == 12
    assert trend[dt.date(2026, 8, 31)] == (0, 0, None)  # before the service existed
    assert trend[dt.date(2026, 9, 30)] == (1, 5, Decimal("20.0"))
    assert trend[TODAY] == (1, 5, Decimal("20.0"))


def test_as_of_a_past_date_the_figures_are_as_they_were(fixed):
    figures = summary(fixed["manager"], Filters(as_of=dt.date(2026, 9, 12)), today=TODAY)
    totals = figures["totals"]
    # On 12 Sep nothing was met or started; A, still on the due date the catalogue gave it
    # (long past), was the one overdue; B to E had been given dates still to come.
    a = Obligation.objects.get(pk=fixed["ids"][0])
    first_due = a.cycles.order_by("period_start").values_list("due_date", flat=True)[0]
    assert first_due is not None and first_due < dt.date(2026, 9, 12)
    assert (totals["applicable"], totals["met"], totals["not_started"], totals["overdue"]) == (
        5,
        0,
        4,
        1,
    )
    assert figures["trend"][-1]["month_end"] == dt.date(2026, 9, 12)


def test_exposure_counts_all_the_providers_overdue_work_whatever_the_page_shows(fixed):
    """A provider's penalty exposure is the provider's: narrowing the page to one service or
    one owner must not make it look safer than it is."""
    provider = fixed["service"].provider
    forum = applied_service(provider=provider, name="Forum")
    rita = Obligation.objects.get(pk=fixed["ids"][4]).owner
    # The same count as the API's and the admin's: every overdue obligation of the provider.
    expected = overdue_obligations(TODAY).filter(provider=provider).count()
    assert expected > 2  # Chat's two, and Forum's own missed catalogue dates
    for filters in (
        Filters(),
        Filters(service=fixed["service"].pk),
        Filters(service=forum.pk),
        Filters(owner=rita.pk),
    ):
        [row] = summary(fixed["manager"], filters, today=TODAY)["providers"]
        assert row["at_risk"], filters
        assert row["reasons"][0] == f"{expected} overdue obligation(s)", filters
    chat = summary(fixed["manager"], Filters(service=fixed["service"].pk), today=TODAY)
    assert chat["totals"]["overdue"] == 2


def test_filters_by_owner_and_another_organisation_sees_nothing(fixed):
    rita = Obligation.objects.get(pk=fixed["ids"][4]).owner
    mine = summary(fixed["manager"], Filters(owner=rita.pk), today=TODAY)
    assert mine["totals"]["applicable"] == 1
    # The owner's trend is replayed from the events of rita's one obligation (E, open since
    # 10 Sep): nothing before September, then 0 of 1 met at each month end.
    trend = {p["month_end"]: (p["met"], p["applicable"]) for p in mine["trend"]}
    assert trend[dt.date(2026, 8, 31)] == (0, 0)
    assert trend[dt.date(2026, 9, 30)] == trend[dt.date(2026, 10, 31)] == (0, 1)
    outsider = member(OrganisationFactory(), role=Role.MANAGER)
    theirs = summary(outsider, Filters(), today=TODAY)
    assert theirs["totals"]["applicable"] == 0
    assert theirs["services"] == theirs["providers"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"as_of": "11/24/2026"}, "as_of"),
        ({"as_of": "2027-01-01"}, "as_of"),
        ({"service": "x"}, "service"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_filters_say_which(query, field):
    with pytest.raises(FilterError) as caught:
        Filters.from_query(query, today=TODAY)
    assert field in caught.value.errors


def test_the_api_reports_the_same_figures(fixed):
    client = client_for(fixed["manager"], read_only=True)
    body = client.get("/api/v1/dashboard/").json()
    assert body["totals"]["overdue"] == 2
    assert body["totals"]["percent_met"] == "20.0"
    assert body["overdue"][0]["r_due"] == (TODAY - dt.timedelta(days=20)).isoformat()
    bad = client.get("/api/v1/dashboard/", {"as_of": "yesterday"})
    assert bad.status_code == 400
    assert "as_of" in bad.json()["fields"]
    # A program may mean 2 January by 01/02/2026: the API takes YYYY-MM-DD alone.
    ambiguous = client.get("/api/v1/dashboard/", {"as_of": "01/02/2026"})
    assert ambiguous.status_code == 400
    assert "use YYYY-MM-DD" in str(ambiguous.json()["fields"]["as_of"])


def test_a_state_link_in_the_admin_lists_what_the_figure_counted(fixed):
    client = Client()
    client.force_login(fixed["manager"])
    response = client.get(
        "/admin/obligations/obligation/", {"state": "overdue", "applicable__exact": "1"}
    )
    assert response.status_code == 200
    assert response.context["cl"].result_count == 2
    # An unknown state is refused the admin's way: back to the list with the error flag.
    bogus = client.get("/admin/obligations/obligation/", {"state": "bogus"})
    assert (bogus.status_code, bogus["Location"]) == (302, "/admin/obligations/obligation/?e=1")


@pytest.mark.parametrize(
    ("as_of", "sizes"), [(None, (10, 2000)), (TODAY - dt.timedelta(days=3), (10, 500))]
)
def test_the_dashboard_costs_the_same_queries_however_big(catalogue, as_of, sizes):
    org = OrganisationFactory(name="Big")
    manager = member(org, role=Role.MANAGER, username="boss")
    owners = [member(org, username=f"owner{i}") for i in range(3)]
    grow = grower(org, owners)

    chosen = Filters(as_of=as_of)
    assert_constant_queries(grow, lambda: summary(manager, chosen, today=TODAY), sizes)


def test_expiring_evidence_is_the_current_evidence_of_the_obligations_in_view(fixed):
    """Within 30 days, soonest first; never evidence that a newer item replaced, a purged
    file, or another organisation's."""
    _, b, c, d, _ = (Obligation.objects.get(pk=pk) for pk in fixed["ids"])
    actor = User.objects.get(username="casey")

    def link(ob, title, days, **kwargs):  # type: ignore[no-untyped-def]
        return add_evidence_link(
            actor=actor,
            cycle=ob.current_cycle,
            url=f"https://example.com/{title.replace(' ', '-')}",
            title=title,
            source=SYSTEM,
            expires_on=TODAY + dt.timedelta(days=days),
            **kwargs,
        )

    link(b, "Soon", 5)
    link(c, "Later", 29)
    link(d, "Too late", 31)
    old = link(d, "Replaced", 3)
    link(d, "Replacement", 20, supersedes=old)
    gone = add_evidence_file(
        actor=actor,
        cycle=b.current_cycle,
        uploaded=SimpleUploadedFile("x.pdf", b"%PDF-1.4\n%%EOF\n", content_type="application/pdf"),
        title="Purged",
        source=SYSTEM,
        expires_on=TODAY + dt.timedelta(days=1),
    )
    org_admin = member(fixed["org"], role=Role.ADMIN, username="ada")
    purge_evidence(actor=org_admin, evidence=gone, reason="Wrong file", source=SYSTEM)
    elsewhere = applied_service(provider=ProviderFactory(organisation=OrganisationFactory()))
    theirs = elsewhere.obligations.filter(applicable=True).first()
    link(theirs, "Theirs", 2)

    expiring = summary(fixed["manager"], Filters(), today=TODAY)["expiring"]
    assert [row["title"] for row in expiring["rows"]] == ["Soon", "Replacement", "Later"]
    assert expiring["rows"][0]["obligation"] == b.pk and not expiring["more"]


def _trend(figures):  # type: ignore[no-untyped-def]
    return {p["month_end"]: (p["met"], p["applicable"]) for p in figures["trend"]}


def test_a_dashboard_page_only_reads_and_the_nightly_task_stores_the_month_ends(fixed):
    client = Client()
    client.force_login(fixed["manager"])
    with CaptureQueriesContext(connection) as read:
        page = client.get("/dashboard/")
    assert page.status_code == 200
    verbs = {q["sql"].split()[0].upper() for q in read.captured_queries}
    assert not verbs & {"INSERT", "UPDATE", "DELETE"}, verbs
    assert not ComplianceCount.objects.exists() and not ComplianceFill.objects.exists()
    # Not stored yet, the past month ends are replayed from the events: the same numbers.
    replayed = _trend(summary(fixed["manager"], Filters(), today=TODAY))
    assert replayed[dt.date(2026, 9, 30)] == (1, 5)

    stored = fill_compliance_counts.apply().get()
    assert stored == [d.isoformat() for d in sorted(replayed) if d < TODAY]
    assert ComplianceFill.objects.count() == 11
    assert ComplianceCount.objects.get(day=dt.date(2026, 9, 30)).met == 1
    assert _trend(summary(fixed["manager"], Filters(), today=TODAY)) == replayed
    assert fill_compliance_counts.apply().get() == []  # a second night stores nothing again


def test_the_backfill_command_stores_past_month_ends_once_and_refuses_bad_options(fixed):
    out = StringIO()
    call_command("backfill_compliance_counts", "--months", "3", stdout=out)
    assert "Stored the counts of 2 month ends: 30 Sep 2026 to 31 Oct 2026." in out.getvalue()
    assert set(ComplianceFill.objects.values_list("day", flat=True)) == {
        dt.date(2026, 9, 30),
        dt.date(2026, 10, 31),
    }
    again = StringIO()
    call_command("backfill_compliance_counts", "--months", "3", stdout=again)
    assert "Nothing to store" in again.getvalue()
    for option, value, message in (
        ("--months", "0", "--months must be from 1 to 1200, not 0"),
        ("--months", "444", "--months 444 reaches back before 1 Jan 1990"),
        ("--months", "1e27", "--months must be a whole number, not '1e27'"),
        ("--date", "9999-12-31", "--date must be a date from"),
        ("--date", "yesterday", "--date must be a YYYY-MM-DD date"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("backfill_compliance_counts", option, value)


def test_a_user_of_no_organisation_sees_an_empty_trend_not_an_error(fixed):
    # Not stored yet, every past month end is replayed over a scope that matches nothing.
    stranger = User.objects.create_user("stranger")
    trend = _trend(summary(stranger, Filters(), today=TODAY))
    assert len(trend) == 12 and set(trend.values()) == {(0, 0)}


def test_the_longest_backfill_the_range_allows_runs_in_one_query(fixed):
    # Back to Jan 1990 (the register's earliest date): 442 month ends, 886 columns, within
    # what SQLite (2,000) and PostgreSQL (1,664) return; one month more is refused above.
    out = StringIO()
    call_command("backfill_compliance_counts", "--months", "443", stdout=out)
    assert "Stored the counts of 442 month ends: 31 Jan 1990 to 31 Oct 2026." in out.getvalue()
    assert ComplianceCount.objects.get(day=dt.date(2026, 9, 30)).met == 1
