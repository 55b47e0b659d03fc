"""The penalty cap (Sch.13 para 4) and the fees position (ss.83-84): pure functions.

They take plain values and the catalogue's parameters (the figures and their sources live in
fixtures/osa-catalogue.json), never the database, so the admin, the API, the command and the
tests all get the same answer. Money is Decimal, in pounds, to the penny.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from obligations.dates import add_months, display

PENNY = Decimal("0.01")


def money(amount: Decimal) -> str:
    return f"£{amount:,.2f}"


@dataclass(frozen=True)
class Revenue:
    """One period's qualifying worldwide revenue, as recorded for a provider."""

    start: dt.date
    end: dt.date
    amount: Decimal
    complete: bool = True
    basis: str = "audited"  # RevenueBasis value
    accounting: bool = True  # False: a fees qualifying period only, not an accounting period
    uk_referable: Decimal | None = None


@dataclass(frozen=True)
class PenaltyCap:
    """The maximum penalty, or why it cannot be computed.

    `rule` names the sub-paragraph of Sch.13 para 4 that decided it; `amount` is None when the
    revenue the cap depends on is not recorded, and `missing` then says what to record.
    """

    amount: Decimal | None
    rule: str
    explanation: str
    missing: str = ""
    period: Revenue | None = None


def _months_in(start: dt.date, end: dt.date) -> int | None:
    """Whole calendar months from start to end inclusive, or None if not whole months."""
    for months in range(1, 61):
        following = add_months(start, months)
        if following - dt.timedelta(days=1) == end:
            return months
        if following > end:
            return None
    return None


def _pro_rata(period: Revenue) -> tuple[Decimal, str]:
    """Para 4(5): a period shorter or longer than a year scales the 10% figure to 12 months."""
    months = _months_in(period.start, period.end)
    if months is not None:
        return _by_months(months)
    days = (period.end - period.start).days + 1
    if 365 <= days <= 366:
        return Decimal(1), ""
    return (
        Decimal(365) / Decimal(days),
        f"scaled to a year from {days} days (para 4(5); not whole months, so by days)",
    )


def _by_months(months: int) -> tuple[Decimal, str]:
    if months == 12:
        return Decimal(1), ""
    return Decimal(12) / Decimal(months), f"scaled to 12 months from {months} (para 4(5))"


def _cap(
    amount: Decimal,
    *,
    rule: str,
    source: str,
    factor: Decimal,
    scaled: str,
    params: Mapping[str, Any],
    determination: bool = False,
    period: Revenue | None = None,
) -> PenaltyCap:
    """The greater of the fixed sum and the revenue share of `amount`, saying which won."""
    fixed = Decimal(params["fixed_gbp"]).quantize(PENNY)
    share = Decimal(params["revenue_percent"]) / Decimal(100)
    if scaled:
        rule += " and 4(5)"
    revenue_share = (amount * share * factor).quantize(PENNY, rounding=ROUND_HALF_UP)
    parts = [f"{params['revenue_percent']}% of {money(amount)} ({source})"]
    if scaled:
        parts.append(scaled)
    if determination:
        parts.append("Ofcom's determination of the revenue applies (para 4(6))")
    if revenue_share > fixed:
        text = f"{money(revenue_share)}: " + ", ".join(parts) + f", is more than {money(fixed)}."
    else:
        text = (
            f"{money(fixed)}: the fixed sum is at least "
            + ", ".join(parts)
            + f" = {money(revenue_share)}."
        )
    text += " A single and a daily penalty share this one cap (para 4(7))."
    return PenaltyCap(max(revenue_share, fixed), rule, text, period=period)


def penalty_cap(
    periods: Iterable[Revenue],
    *,
    no_accounting_period: bool,
    params: Mapping[str, Any],
) -> PenaltyCap:
    """The maximum penalty from a provider's recorded accounting periods (Sch.13 para 4)."""
    accounting = sorted((p for p in periods if p.accounting), key=lambda p: p.end, reverse=True)
    if no_accounting_period and not accounting:
        return _fixed_only(params)
    complete = [p for p in accounting if p.complete]
    if complete:
        period, rule = complete[0], "Sch.13 para 4(1)"
        basis = "the most recent complete accounting period"
    elif accounting:
        period, rule = accounting[0], "Sch.13 para 4(4)"
        basis = "an estimate for the first accounting period, which has not ended"
    else:
        return PenaltyCap(
            None,
            "Sch.13 para 4(1)",
            "No cap computed: the provider's qualifying worldwide revenue is not recorded.",
            missing="Record the qualifying worldwide revenue of the most recent complete "
            "accounting period (or, while the first period runs, its estimate), or mark that "
            "the provider has no accounting period (para 4(2)).",
        )
    factor, scaled = _pro_rata(period)
    return _cap(
        period.amount,
        rule=rule,
        source=f"{basis}, {display(period.start)} to {display(period.end)}",
        factor=factor,
        scaled=scaled,
        params=params,
        determination=period.basis == "ofcom_determination",
        period=period,
    )


def _fixed_only(params: Mapping[str, Any]) -> PenaltyCap:
    fixed = Decimal(params["fixed_gbp"]).quantize(PENNY)
    return PenaltyCap(
        fixed, "Sch.13 para 4(2)", f"{money(fixed)}: the provider has no accounting period."
    )


def penalty_cap_for_profile(
    revenue: Decimal | None,
    *,
    months: int,
    no_accounting_period: bool,
    params: Mapping[str, Any],
) -> PenaltyCap:
    """The cap for one revenue figure over an accounting period of `months` (the command)."""
    if no_accounting_period:
        return _fixed_only(params)
    if revenue is None:
        return PenaltyCap(
            None,
            "Sch.13 para 4(1)",
            "No cap computed: qualifying worldwide revenue is not given.",
            missing="Give qualifying_worldwide_revenue, or no_accounting_period: true.",
        )
    factor, scaled = _by_months(months)
    return _cap(
        revenue,
        rule="Sch.13 para 4(1)",
        source=f"an accounting period of {months} months",
        factor=factor,
        scaled=scaled,
        params=params,
    )


@dataclass(frozen=True)
class FeesYear:
    """Whether a provider is fee-paying in one charging year (s.83(2)), and what follows."""

    charging_year: int  # the year the charging year starts in (2026 = 2026/27)
    starts: dt.date
    qualifying_start: dt.date
    qualifying_end: dt.date
    revenue: Decimal | None
    fee_paying: bool | None  # None: the qualifying period's revenue is not recorded
    exempt: bool
    why: str
    notify_by: dt.date
    pay_by: dt.date

    @property
    def label(self) -> str:
        return f"{self.charging_year}/{str(self.charging_year + 1)[-2:]}"


def _fees_first(period: Revenue) -> bool:
    return period.accounting


def charging_year_of(day: dt.date, params: Mapping[str, Any]) -> int:
    month, dom = (int(x) for x in params["charging_year_start"].split("-"))
    return day.year if (day.month, day.day) >= (month, dom) else day.year - 1


def fees_year(
    periods: Iterable[Revenue], charging_year: int, params: Mapping[str, Any]
) -> FeesYear:
    """The fees position for one charging year, from the revenue of its own qualifying period
    (not the period the penalty cap uses)."""
    month, dom = (int(x) for x in params["charging_year_start"].split("-"))
    starts = dt.date(charging_year, month, dom)
    q_year = charging_year - int(params["qualifying_period_years_before"])
    q_start, q_end = dt.date(q_year, 1, 1), dt.date(q_year, 12, 31)
    threshold = Decimal(params["threshold_gbp"])
    first = int(params["first_charging_year"])
    if charging_year == first:
        notify_by = dt.date.fromisoformat(params["first_notification_by"])
    else:
        notify_by = add_months(starts, -int(params["notification_months_before"]))

    def year(revenue: Decimal | None, fee_paying: bool | None, exempt: bool, why: str) -> FeesYear:
        return FeesYear(
            charging_year=charging_year,
            starts=starts,
            qualifying_start=q_start,
            qualifying_end=q_end,
            revenue=revenue,
            fee_paying=fee_paying,
            exempt=exempt,
            why=why,
            notify_by=notify_by,
            pay_by=starts,
        )

    label = f"{charging_year}/{str(charging_year + 1)[-2:]}"
    if charging_year < first:
        return year(
            None,
            False,
            False,
            f"{label} is before the first charging year ({first}/{str(first + 1)[-2:]}).",
        )
    # A period recorded for fees alone wins over an accounting period with the same dates.
    matches = sorted((p for p in periods if (p.start, p.end) == (q_start, q_end)), key=_fees_first)
    match = matches[0] if matches else None
    if match is None:
        return year(
            None,
            None,
            False,
            f"Qualifying worldwide revenue for {display(q_start)} to {display(q_end)} "
            f"(the qualifying period for {label}) is not recorded.",
        )
    if match.amount < threshold:
        why = (
            f"Qualifying worldwide revenue {money(match.amount)} for {q_year} is below the "
            f"{money(threshold)} threshold: not fee-paying in {label}."
        )
        return year(match.amount, False, False, why)
    why = (
        f"Qualifying worldwide revenue {money(match.amount)} for {q_year} is at or above the "
        f"{money(threshold)} threshold: fee-paying in {label} (s.83(2))."
    )
    exemption = params["exemption"]
    below = Decimal(exemption["uk_referable_below_gbp"])
    if match.uk_referable is None or match.uk_referable >= below:
        return year(match.amount, True, False, why)
    uk = f"UK-referable revenue {money(match.uk_referable)} is below {money(below)}"
    # An exemption is law only once made (s.83(6): Ofcom's, approved by the Secretary of
    # State) and in force for the charging year (s.83(8)); until then it is shown, not applied.
    made = exemption.get("in_force_from")
    if made and dt.date.fromisoformat(made) <= starts:
        return year(match.amount, False, True, f"{why[:-1]}, but {uk}: exempt in {label}.")
    return year(
        match.amount,
        True,
        False,
        f"{why} {uk}: a proposed exemption would cover it, but it is not in force "
        f"({exemption['note']}).",
    )


@dataclass(frozen=True)
class FeesDue:
    """One dated fees requirement: notify Ofcom for a charging year, or pay its fee."""

    charging_year: int
    starts: dt.date
    label: str
    due: dt.date
    why: str
    known: bool  # False when the revenue that decides it is not recorded


def fees_requirements(
    periods: Iterable[Revenue], today: dt.date, params: Mapping[str, Any]
) -> tuple[list[FeesDue], list[FeesDue], list[FeesYear]]:
    """What the provider owes for the current and the next charging year.

    Notification (s.83(1)): the first fee-paying year, and every year that switches in or out.
    Payment (s.84): every fee-paying year. A year whose revenue is unknown is listed as
    possibly owed, saying so, rather than silently left out.
    """
    periods = list(periods)
    current = charging_year_of(today, params)
    years = {y: fees_year(periods, y, params) for y in (current - 1, current, current + 1)}
    notify: list[FeesDue] = []
    pay: list[FeesDue] = []
    for y in (current, current + 1):
        this, before = years[y], years[y - 1]
        if this.fee_paying is not False:
            known = this.fee_paying is not None
            why = this.why if known else f"Possibly: {this.why}"
            pay.append(FeesDue(y, this.starts, this.label, this.pay_by, why, known))
        if this.fee_paying is None or before.fee_paying is None:
            unknown = this if this.fee_paying is None else before
            notify.append(
                FeesDue(
                    y, this.starts, this.label, this.notify_by, f"Possibly: {unknown.why}", False
                )
            )
        elif this.fee_paying != before.fee_paying:
            first = y == int(params["first_charging_year"]) or not any(
                v.fee_paying for k, v in years.items() if k < y
            )
            if this.fee_paying:
                kind = "its first fee-paying year" if first else "a switch into fee-paying"
                section = "s.83(1)(a)" if first else "s.83(1)(b)(i)"
            else:
                kind, section = "a switch out of fee-paying", "s.83(1)(b)(ii)"
            why = f"{this.why} It is {kind} ({section})."
            notify.append(FeesDue(y, this.starts, this.label, this.notify_by, why, True))
    return notify, pay, [years[current], years[current + 1]]
