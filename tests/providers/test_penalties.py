"""Penalty exposure (Sch.13 para 4) and fees (ss.83-84): the reference's worked examples, the
register's provider-wide fees obligations, and a penalty above the cap flagged, not refused."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from obligations.access.users import get_system_user
from obligations.catalogue.models import Duty
from obligations.notices.actions import record_notice
from obligations.notices.models import NoticeKind, NoticeStage, OfcomNotice, TechnologyNotice
from obligations.providers.actions import revenue_changed
from obligations.providers.models import Provider, RevenueBasis, RevenuePeriod
from obligations.providers.penalties import Revenue, fees_requirements, fees_year, penalty_cap
from obligations.providers.selectors import (
    exposure_reasons,
    penalty_above_cap,
    provider_penalty_cap,
    providers_with_exposure,
)
from obligations.register.apply import apply_catalogue
from obligations.register.models import Obligation
from obligations.register.states import CycleStatus, EventKind, EventSource
from obligations.register.workflow import do_mark_not_applicable
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member
from tests.helpers import admin_form_data, assert_constant_queries, revenue_row

ADMIN = EventSource.ADMIN


@pytest.fixture(scope="module")
def params(catalogue_file):  # type: ignore[no-untyped-def]
    return catalogue_file.parameters


def year(y: int, amount: str, **kwargs) -> Revenue:  # type: ignore[no-untyped-def]
    return Revenue(dt.date(y, 1, 1), dt.date(y, 12, 31), Decimal(amount), **kwargs)


def cap_of(periods, params, no_period=False):  # type: ignore[no-untyped-def]
    return penalty_cap(periods, no_accounting_period=no_period, params=params["penalty"])


# --- The cap: the reference's table, to the penny --------------------------


@pytest.mark.parametrize(
    ("revenue", "expected"),
    [
        ("0", "18000000.00"),
        ("179999999", "18000000.00"),  # 10% = 17,999,999.90
        ("180000000", "18000000.00"),  # a tie
        ("180000001", "18000000.10"),
        ("2500000000", "250000000.00"),
    ],
)
def test_the_cap_is_the_greater_of_18m_and_10_percent(params, revenue, expected):
    cap = cap_of([year(2025, revenue)], params)
    assert str(cap.amount) == expected  # to the penny, as a string shows it
    assert cap.rule == "Sch.13 para 4(1)"
    assert "(para 4(7))" in cap.explanation  # single and daily share the cap


def test_the_revenue_share_wins_only_when_greater(params):
    assert cap_of([year(2025, "180000001")], params).explanation.startswith("£18,000,000.10: 10%")
    assert cap_of([year(2025, "180000000")], params).explanation.startswith(
        "£18,000,000.00: the fixed sum is at least"
    )


def test_the_most_recent_complete_period_is_used(params):
    cap = cap_of([year(2024, "300000000"), year(2025, "500000000")], params)
    assert cap.amount == Decimal("50000000.00")
    assert cap.period is not None and cap.period.start == dt.date(2025, 1, 1)


def test_an_estimate_while_the_first_period_runs(params):
    running = Revenue(
        dt.date(2026, 1, 1),
        dt.date(2026, 12, 31),
        Decimal("400000000"),
        complete=False,
        basis="ofcom_estimate",
    )
    cap = cap_of([running], params)
    assert (cap.amount, cap.rule) == (Decimal("40000000.00"), "Sch.13 para 4(4)")
    assert "estimate for the first accounting period" in cap.explanation


@pytest.mark.parametrize(
    ("start", "end", "revenue", "expected"),
    [
        (dt.date(2025, 1, 1), dt.date(2025, 6, 30), "100000000", "20000000.00"),  # x 12/6
        (dt.date(2024, 1, 1), dt.date(2025, 6, 30), "300000000", "20000000.00"),  # x 12/18
    ],
)
def test_periods_shorter_or_longer_than_a_year_scale_pro_rata(
    params, start, end, revenue, expected
):
    cap = cap_of([Revenue(start, end, Decimal(revenue))], params)
    assert cap.amount == Decimal(expected)
    assert cap.rule == "Sch.13 para 4(1) and 4(5)"


def test_no_accounting_period_is_the_fixed_sum(params):
    cap = cap_of([], params, no_period=True)
    assert (str(cap.amount), cap.rule) == ("18000000.00", "Sch.13 para 4(2)")


def test_no_revenue_recorded_is_no_cap_with_the_reason(params):
    cap = cap_of([], params)
    assert cap.amount is None
    assert "not recorded" in cap.explanation
    assert "most recent complete accounting period" in cap.missing


def test_a_fees_only_period_does_not_set_the_cap(params):
    fees_only = year(2024, "900000000", accounting=False)
    assert cap_of([fees_only], params).amount is None


def test_ofcoms_determination_is_named(params):
    cap = cap_of([year(2025, "300000000", basis="ofcom_determination")], params)
    assert "para 4(6)" in cap.explanation


# --- Fees: each charging year's own qualifying period ---------------------


@pytest.mark.parametrize(
    ("revenue", "fee_paying"),
    [("249999999.99", False), ("250000000", True), ("250000000.01", True)],
)
def test_fees_threshold_is_at_or_above(params, revenue, fee_paying):
    position = fees_year([year(2024, revenue)], 2026, params["fees"])
    assert position.fee_paying is fee_paying
    assert (position.qualifying_start, position.qualifying_end) == (
        dt.date(2024, 1, 1),
        dt.date(2024, 12, 31),
    )


def test_fees_use_their_own_qualifying_period_not_the_latest(params):
    # 2025's revenue is over the threshold, but 2026/27 looks at 2024's.
    periods = [year(2024, "100000000"), year(2025, "900000000")]
    assert fees_year(periods, 2026, params["fees"]).fee_paying is False
    assert fees_year(periods, 2027, params["fees"]).fee_paying is True


def test_the_proposed_10m_exemption_is_shown_but_not_applied_until_it_is_law(params):
    """No exemption under s.83(6) was found: a provider below GBP 10m of UK-referable revenue
    still notifies (s.83(1)), told of the proposal; once made, it is exempt from that
    charging year (s.83(8))."""
    periods = [year(2024, "900000000", uk_referable=Decimal("8000000"))]
    position = fees_year(periods, 2026, params["fees"])
    assert (position.fee_paying, position.exempt) == (True, False)
    assert "a proposed exemption would cover it, but it is not in force" in position.why
    made = {
        **params["fees"],
        "exemption": {**params["fees"]["exemption"], "in_force_from": "2027-04-01"},
    }
    assert fees_year(periods, 2026, made).exempt is False  # not for 2026/27
    later = fees_year([year(2025, "900000000", uk_referable=Decimal("8000000"))], 2027, made)
    assert (later.fee_paying, later.exempt) == (False, True)


def test_unknown_revenue_is_unknown_not_false(params):
    position = fees_year([], 2026, params["fees"])
    assert position.fee_paying is None
    assert "not recorded" in position.why


def test_first_fee_paying_year_and_switching_out_both_need_a_notification(params):
    periods = [year(2024, "300000000"), year(2025, "249999999")]
    notify, pay, years = fees_requirements(periods, TODAY, params["fees"])
    assert [y.label for y in years] == ["2026/27", "2027/28"]
    assert [(n.label, n.due) for n in notify] == [
        ("2026/27", dt.date(2026, 4, 11)),  # first fee-paying year (s.83(1)(a))
        ("2027/28", dt.date(2026, 10, 1)),  # switch out (s.83(1)(b)(ii))
    ]
    assert "s.83(1)(a)" in notify[0].why and "s.83(1)(b)(ii)" in notify[1].why
    assert notify[0].why.endswith("It is its first fee-paying year (s.83(1)(a)).")
    assert [(p.label, p.due) for p in pay] == [("2026/27", dt.date(2026, 4, 1))]


def test_no_notification_while_the_position_does_not_change(params):
    periods = [year(2024, "300000000"), year(2025, "400000000")]
    notify, pay, _ = fees_requirements(periods, dt.date(2027, 5, 1), params["fees"])
    # 2027/28 is fee-paying like 2026/27: no notification; 2028/29's revenue (2026) is unknown.
    assert [(n.label, n.known) for n in notify] == [("2028/29", False)]
    assert [p.label for p in pay] == ["2027/28", "2028/29"]


# --- The register: provider-wide fees obligations --------------------------


@pytest.fixture
def provider(catalogue):  # type: ignore[no-untyped-def]
    org = OrganisationFactory()
    provider = ProviderFactory(organisation=org, name="Acme")
    applied_service(provider=provider, name="Acme Chat")
    applied_service(provider=provider, name="Acme Video")
    return provider


def fees_obligations(provider):  # type: ignore[no-untyped-def]
    return {
        o.duty.code: o
        for o in Obligation.objects.filter(provider=provider, service__isnull=True).select_related(
            "duty", "current_cycle"
        )
    }


def record_revenue(provider, y, amount, **kwargs):  # type: ignore[no-untyped-def]
    RevenuePeriod.objects.create(
        provider=provider,
        start=dt.date(y, 1, 1),
        end=dt.date(y, 12, 31),
        amount_gbp=Decimal(amount),
        basis=RevenueBasis.AUDITED,
        **kwargs,
    )
    revenue_changed(actor=get_system_user(), provider=provider, source=ADMIN)


def test_fees_are_one_obligation_for_the_provider_not_one_per_service(provider):
    record_revenue(provider, 2024, "300000000")
    record_revenue(provider, 2025, "300000000")
    found = fees_obligations(provider)
    assert set(found) == {"FEES-NOTIFY", "FEES-PAY"}
    assert Obligation.objects.filter(duty__code="FEES-NOTIFY").count() == 1
    notify = found["FEES-NOTIFY"]
    assert notify.current_cycle.due_date == dt.date(2026, 4, 11)
    assert "Acme Chat, Acme Video" in notify.why
    pay = found["FEES-PAY"].why
    assert ".;" not in pay and "(s.83(2)). 2027/28: " in pay, pay  # one sentence after another
    assert found["FEES-PAY"].current_cycle.due_date == dt.date(2026, 4, 1)


def test_below_the_threshold_the_fees_obligations_do_not_apply(provider):
    record_revenue(provider, 2024, "1000000")
    record_revenue(provider, 2025, "1000000")
    found = fees_obligations(provider)
    assert not found["FEES-NOTIFY"].applicable
    assert "below" in found["FEES-NOTIFY"].not_applicable_reason
    assert found["FEES-NOTIFY"].current_cycle.status == CycleStatus.NOT_APPLICABLE


def test_below_the_proposed_exemption_the_provider_still_notifies_and_is_told_why(provider):
    record_revenue(provider, 2024, "900000000", uk_referable_gbp=Decimal("8000000"))
    record_revenue(provider, 2025, "900000000", uk_referable_gbp=Decimal("8000000"))
    notify = fees_obligations(provider)["FEES-NOTIFY"]
    assert notify.applicable
    assert "a proposed exemption would cover it, but it is not in force" in notify.why


def test_when_a_years_cycle_is_met_the_next_year_owed_opens(provider):
    system = get_system_user()
    record_revenue(provider, 2024, "300000000")
    record_revenue(provider, 2025, "100000000")  # switch out for 2027/28
    notify = fees_obligations(provider)["FEES-NOTIFY"]
    first = notify.current_cycle
    assert first.period_start == dt.date(2026, 4, 1)
    do_mark_not_applicable(
        actor=system, cycle=first, source=ADMIN, reason="Notified on 2 Apr 2026 (ref 123)."
    )
    revenue_changed(actor=system, provider=provider, source=ADMIN)
    notify.refresh_from_db()
    second = notify.current_cycle
    assert second.pk != first.pk
    assert (second.period_start, second.due_date) == (dt.date(2027, 4, 1), dt.date(2026, 10, 1))
    assert "switch out" in second.trigger_note
    # Running it again changes nothing.
    revenue_changed(actor=system, provider=provider, source=ADMIN)
    assert notify.cycles.count() == 2


def test_a_corrected_revenue_moves_the_open_cycle(provider):
    record_revenue(provider, 2024, "100000000")
    record_revenue(provider, 2025, "100000000")
    assert not fees_obligations(provider)["FEES-PAY"].applicable
    period = RevenuePeriod.objects.get(provider=provider, start=dt.date(2025, 1, 1))
    period.amount_gbp = Decimal("260000000")
    period.save()
    revenue_changed(actor=get_system_user(), provider=provider, source=ADMIN)
    pay = fees_obligations(provider)["FEES-PAY"]
    assert pay.applicable
    assert pay.current_cycle.due_date == dt.date(2027, 4, 1)
    assert pay.events.filter(kind=EventKind.REAPPLIED).exists()


# --- A penalty above the cap: saved, flagged -------------------------------


def test_a_penalty_above_the_cap_is_saved_and_flagged_then_cleared(provider):
    system = get_system_user()
    record_revenue(provider, 2025, "100000000")  # cap: £18m
    service = provider.services.first()
    notice = record_notice(
        actor=system,
        notice=OfcomNotice(
            service=service,
            kind=NoticeKind.CONFIRMATION,
            given_on=TODAY,
            single_penalty_gbp=Decimal("25000000"),
            pay_by=TODAY + dt.timedelta(days=28),
        ),
        source=ADMIN,
    )
    assert OfcomNotice.objects.get(pk=notice.pk).single_penalty_gbp == Decimal("25000000")
    assert "above the computed cap £18,000,000.00" in penalty_above_cap(notice)
    codes = {o.duty.code: o for o in notice.obligations.select_related("duty")}
    assert codes.keys() == {"PENALTY-PAY", "PENALTY-CAP-CHECK"}
    # Ofcom knew better: the revenue was £400m, so the cap is £40m and the flag clears.
    period = RevenuePeriod.objects.get(provider=provider)
    period.amount_gbp = Decimal("400000000")
    period.save()
    revenue_changed(actor=system, provider=provider, source=ADMIN)
    assert penalty_above_cap(notice) == ""
    check = Obligation.objects.get(pk=codes["PENALTY-CAP-CHECK"].pk)
    assert not check.applicable and check.current_cycle.status == CycleStatus.NOT_APPLICABLE


def test_single_and_daily_penalties_share_one_cap(provider):
    record_revenue(provider, 2025, "100000000")
    notice = OfcomNotice(
        service=provider.services.first(),
        kind=NoticeKind.PENALTY,
        given_on=TODAY,
        single_penalty_gbp=Decimal("17990000"),
        daily_penalty_gbp=Decimal("20000"),
    )
    assert "para 4(7)" in penalty_above_cap(notice)


# --- The admin and the demo -----------------------------------------------


def test_the_provider_page_shows_the_cap_or_what_is_missing(client, provider):
    user = member(provider.organisation, username="casey")
    client.force_login(user)
    url = reverse("admin:obligations_provider_change", args=[provider.pk])
    page = client.get(url).content.decode()
    assert "No cap computed" in page and "most recent complete accounting period" in page
    assert "£18,000,000" not in page
    record_revenue(provider, 2025, "2500000000")
    page = client.get(url).content.decode()
    assert "£250,000,000.00" in page and "Sch.13 para 4(1)" in page
    assert "At risk" in page  # the services' first assessments are overdue
    assert "own obligations (for all its services)" in page and "FEES-PAY" in page
    listing = client.get(reverse("admin:obligations_provider_changelist")).content.decode()
    assert "£250,000,000.00 (Sch.13 para 4(1))" in listing


def test_the_provider_list_costs_the_same_queries_at_two_sizes(client, catalogue):
    org = OrganisationFactory()
    client.force_login(member(org))

    def grow(size):  # type: ignore[no-untyped-def]
        while Provider.objects.filter(organisation=org).count() < size:
            provider = ProviderFactory(organisation=org)
            applied_service(provider=provider)
            record_revenue(provider, 2025, "300000000")

    assert_constant_queries(
        grow, lambda: client.get(reverse("admin:obligations_provider_changelist")), (2, 12)
    )


def test_saving_revenue_in_the_admin_updates_the_fees_obligations(client, provider):
    client.force_login(member(provider.organisation, username="casey"))
    url = reverse("admin:obligations_provider_change", args=[provider.pk])
    data = admin_form_data(client.get(url))
    data.update(revenue_row("300000000"))
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert fees_obligations(provider)["FEES-PAY"].current_cycle.due_date == dt.date(2026, 4, 1)


def test_the_demo_has_a_provider_at_risk_and_a_notice_in_its_window(catalogue):
    call_command("load_demo", stdout=io.StringIO())
    providers = providers_with_exposure(Provider.objects.all(), TODAY)
    at_risk = {p.name: exposure_reasons(p) for p in providers}
    assert any("open Technology Notice" in r for r in at_risk["Northwind Social Ltd"])
    notice = TechnologyNotice.objects.get(service__name="Northwind Chat")
    assert notice.stage == NoticeStage.WARNING
    assert notice.representations_due is not None and notice.representations_due > TODAY
    elsewhere = Provider.objects.get(name="Elsewhere Games")
    assert provider_penalty_cap(elsewhere).amount is None


def test_a_per_service_fees_obligation_from_an_older_version_closes_saying_why(provider):
    service = provider.services.first()
    old = Obligation.objects.create(
        provider=provider,
        service=service,
        duty=Duty.objects.get(code="FEES-PAY"),
        why="Kept per service before catalogue 2026.11.3.",
    )
    apply_catalogue(actor=get_system_user(), service=service, source=ADMIN)
    old.refresh_from_db()
    assert not old.applicable
    assert old.not_applicable_reason.startswith("Kept once for the provider")
