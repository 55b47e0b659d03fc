"""The penalty cap and the fees regime stated as the Act states them, at their edges: periods of
odd lengths (Sch.13 para 4(5)), the charging year's first day, the first charging year, the
exemption's boundary, and the notification each change of position needs (s.83(1)).

Pure functions, no database: these are the tests `make mutation` runs against every mutant
of obligations/providers/penalties.py (issue 31), so each states one rule a mutant breaks.
"""

import datetime as dt
from decimal import Decimal

import pytest

from obligations.providers.penalties import (
    Revenue,
    charging_year_of,
    fees_requirements,
    fees_year,
    penalty_cap,
    penalty_cap_for_profile,
)


@pytest.fixture(scope="module")
def penalty(catalogue_file):  # type: ignore[no-untyped-def]
    return catalogue_file.parameters["penalty"]


@pytest.fixture(scope="module")
def fees(catalogue_file):  # type: ignore[no-untyped-def]
    return catalogue_file.parameters["fees"]


def period(start: dt.date, end: dt.date, amount: str, **kwargs) -> Revenue:  # type: ignore[no-untyped-def]
    return Revenue(start, end, Decimal(amount), **kwargs)


def calendar_year(y: int, amount: str, **kwargs) -> Revenue:  # type: ignore[no-untyped-def]
    return period(dt.date(y, 1, 1), dt.date(y, 12, 31), amount, **kwargs)


def cap(revenue: Revenue, penalty):  # type: ignore[no-untyped-def]
    return penalty_cap([revenue], no_accounting_period=False, params=penalty)


# --- Sch.13 para 4(5): a period that is not a year scales the 10% figure -------------------


@pytest.mark.parametrize(
    ("start", "end", "revenue", "expected"),
    [
        # 1 Jan to 15 Jul 2025 is 196 days, not whole months: 10% x 365/196.
        (dt.date(2025, 1, 1), dt.date(2025, 7, 15), "196000000", "36500000.00"),
        # 364 days (1 Jan to 30 Dec 2025): just short of a year, scaled up by 365/364.
        (dt.date(2025, 1, 1), dt.date(2025, 12, 30), "364000000", "36500000.00"),
        # 367 days (1 Jan 2025 to 2 Jan 2026): just over a year, scaled down by 365/367.
        (dt.date(2025, 1, 1), dt.date(2026, 1, 2), "367000000", "36500000.00"),
    ],
)
def test_para_4_5_a_period_of_odd_days_is_scaled_to_365_days(
    penalty, start, end, revenue, expected
):
    result = cap(period(start, end, revenue), penalty)
    assert str(result.amount) == expected
    assert result.rule == "Sch.13 para 4(1) and 4(5)"
    days = (end - start).days + 1
    assert f"scaled to a year from {days} days (para 4(5); not whole months" in result.explanation


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2024, 1, 1), dt.date(2024, 12, 30)),  # 365 days of a leap year: not 12 months
        (dt.date(2025, 1, 1), dt.date(2026, 1, 1)),  # 366 days, not 12 months
    ],
)
def test_para_4_5_365_or_366_days_is_a_year_and_not_scaled(penalty, start, end):
    result = cap(period(start, end, "300000000"), penalty)
    assert str(result.amount) == "30000000.00"
    assert result.rule == "Sch.13 para 4(1)"
    assert "scaled" not in result.explanation


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2025, 2, 1), dt.date(2025, 2, 28)),  # one month
        (dt.date(2024, 2, 1), dt.date(2024, 2, 29)),  # one month, of a leap year
    ],
)
def test_para_4_5_a_one_month_period_is_scaled_by_twelve(penalty, start, end):
    result = cap(period(start, end, "100000000"), penalty)
    assert str(result.amount) == "120000000.00"  # 10% x 12/1
    assert "scaled to 12 months from 1 (para 4(5))" in result.explanation


def test_para_4_5_periods_count_by_months_up_to_five_years_then_by_days(penalty):
    """Whole months are recognised up to 60 (no accounting period is that long: Companies Act
    2006 s.392 allows 18 months); past that, the period is counted in days."""
    sixty = cap(period(dt.date(2020, 1, 1), dt.date(2024, 12, 31), "1000000000"), penalty)
    assert str(sixty.amount) == "20000000.00"  # 10% x 12/60
    assert "scaled to 12 months from 60 (para 4(5))" in sixty.explanation
    sixty_one = cap(period(dt.date(2020, 1, 1), dt.date(2025, 1, 31), "2000000000"), penalty)
    assert str(sixty_one.amount) == "39289558.67"  # 10% x 365/1858 days, to the penny
    assert "from 1858 days" in sixty_one.explanation


# --- The cap for a profile (the command and the API): months given, not dates --------------


def test_para_4_2_a_profile_without_an_accounting_period_is_capped_at_18m(penalty):
    result = penalty_cap_for_profile(
        Decimal("900000000"), months=12, no_accounting_period=True, params=penalty
    )
    assert (str(result.amount), result.rule) == ("18000000.00", "Sch.13 para 4(2)")


def test_a_profile_without_revenue_has_no_cap_and_says_what_to_give(penalty):
    result = penalty_cap_for_profile(None, months=12, no_accounting_period=False, params=penalty)
    assert result.amount is None
    assert result.rule == "Sch.13 para 4(1)"
    assert result.missing == "Give qualifying_worldwide_revenue, or no_accounting_period: true."


def test_para_4_1_and_4_5_a_profiles_six_month_period_doubles_the_share(penalty):
    result = penalty_cap_for_profile(
        Decimal("100000000"), months=6, no_accounting_period=False, params=penalty
    )
    assert (str(result.amount), result.rule) == ("20000000.00", "Sch.13 para 4(1) and 4(5)")
    assert "an accounting period of 6 months" in result.explanation
    assert "para 4(6)" not in result.explanation  # no determination of Ofcom's is involved


# --- s.83: the charging year and its qualifying period ---------------------------------------


@pytest.mark.parametrize(
    ("day", "charging_year"),
    [
        (dt.date(2027, 1, 1), 2026),  # January to March belong to the year begun last April
        (dt.date(2027, 3, 31), 2026),  # the day before the charging year starts
        (dt.date(2027, 4, 1), 2027),  # its first day
        (dt.date(2027, 4, 2), 2027),
        (dt.date(2028, 2, 29), 2027),  # a leap day, in the charging year 2027/28
        (dt.date(2027, 12, 31), 2027),
    ],
)
def test_the_charging_year_starts_on_1_april(fees, day, charging_year):
    assert charging_year_of(day, fees) == charging_year


def test_the_charging_years_label_is_its_two_calendar_years(fees):
    position = fees_year([calendar_year(2024, "300000000")], 2026, fees)
    assert position.label == "2026/27"
    assert position.why.endswith("fee-paying in 2026/27 (s.83(2)).")
    assert position.exempt is False
    assert fees_year([calendar_year(2097, "1")], 2099, fees).label == "2099/00"


def test_a_year_before_the_first_charging_year_owes_nothing(fees):
    position = fees_year([calendar_year(2023, "900000000")], 2025, fees)
    assert (position.fee_paying, position.exempt) == (False, False)
    assert position.why == "2025/26 is before the first charging year (2026/27)."


def test_unrecorded_and_below_threshold_revenue_is_never_an_exemption(fees):
    unknown = fees_year([], 2026, fees)
    assert (unknown.fee_paying, unknown.exempt) == (None, False)
    below = fees_year([calendar_year(2024, "100")], 2026, fees)
    assert (below.fee_paying, below.exempt) == (False, False)


def test_a_period_recorded_for_fees_alone_wins_over_an_accounting_period_of_the_same_dates(fees):
    accounts = calendar_year(2024, "100000000")
    for_fees = calendar_year(2024, "300000000", accounting=False)
    assert fees_year([accounts, for_fees], 2026, fees).revenue == Decimal("300000000")
    assert fees_year([for_fees, accounts], 2026, fees).revenue == Decimal("300000000")


def test_uk_referable_revenue_of_exactly_10m_is_not_below_the_proposed_exemption(fees):
    at = fees_year([calendar_year(2024, "900000000", uk_referable=Decimal("10000000"))], 2026, fees)
    assert (at.fee_paying, at.exempt) == (True, False)
    assert "exemption" not in at.why


def test_s83_8_once_in_force_the_exemption_says_exempt_in_one_sentence(fees):
    made = {**fees, "exemption": {**fees["exemption"], "in_force_from": "2027-04-01"}}
    periods = [calendar_year(2025, "900000000", uk_referable=Decimal("8000000"))]
    position = fees_year(periods, 2027, made)
    assert position.why == (
        "Qualifying worldwide revenue £900,000,000.00 for 2025 is at or above the "
        "£250,000,000.00 threshold: fee-paying in 2027/28 (s.83(2)), but UK-referable revenue "
        "£8,000,000.00 is below £10,000,000.00: exempt in 2027/28."
    )


# --- s.83(1) notifications and s.84 payments --------------------------------------------------


def test_s83_1_a_the_first_fee_paying_year_may_come_after_the_first_charging_year(fees):
    """Below the threshold in 2026/27 and above it in 2027/28: 2027/28 is the provider's first
    fee-paying year (s.83(1)(a)), notified 6 months before it starts (s.83(5)(b))."""
    periods = [calendar_year(2024, "100000000"), calendar_year(2025, "300000000")]
    notify, pay, _ = fees_requirements(periods, dt.date(2026, 11, 24), fees)
    assert [(n.label, n.due, n.known) for n in notify] == [("2027/28", dt.date(2026, 10, 1), True)]
    assert notify[0].why.endswith("It is its first fee-paying year (s.83(1)(a)).")
    assert [(p.label, p.due, p.known) for p in pay] == [("2027/28", dt.date(2027, 4, 1), True)]
    assert not pay[0].why.startswith("Possibly")


def test_s83_1_b_i_coming_back_above_the_threshold_is_a_switch_in(fees):
    periods = [
        calendar_year(2025, "300000000"),  # 2027/28: fee-paying
        calendar_year(2026, "100000000"),  # 2028/29: not
        calendar_year(2027, "300000000"),  # 2029/30: fee-paying again
    ]
    notify, _, _ = fees_requirements(periods, dt.date(2028, 5, 1), fees)
    assert [n.label for n in notify] == ["2028/29", "2029/30"]
    assert notify[0].why.endswith("It is a switch out of fee-paying (s.83(1)(b)(ii)).")
    assert notify[1].why.endswith("It is a switch into fee-paying (s.83(1)(b)(i)).")


def test_unknown_revenue_makes_payment_and_notification_possible_not_certain(fees):
    notify, pay, _ = fees_requirements([], dt.date(2026, 11, 24), fees)
    assert [(p.label, p.known) for p in pay] == [("2026/27", False), ("2027/28", False)]
    assert all(p.why.startswith("Possibly: Qualifying worldwide revenue for") for p in pay)
    assert [(n.label, n.known) for n in notify] == [("2026/27", False), ("2027/28", False)]


def test_a_known_year_after_an_unknown_one_is_notified_saying_which_revenue_is_missing(fees):
    """2027/28 is fee-paying, but 2026/27's qualifying revenue (2024) is not recorded: whether
    2027/28 is a first year or no change depends on it, and the reason names 2026/27's."""
    periods = [calendar_year(2025, "300000000"), calendar_year(2026, "300000000")]
    notify, pay, _ = fees_requirements(periods, dt.date(2027, 5, 1), fees)
    assert notify[0].label == "2027/28" and notify[0].known is False
    assert notify[0].why == (
        "Possibly: Qualifying worldwide revenue for 1 Jan 2024 to 31 Dec 2024 "
        "(the qualifying period for 2026/27) is not recorded."
    )
    assert [(p.label, p.known) for p in pay] == [("2027/28", True), ("2028/29", True)]
