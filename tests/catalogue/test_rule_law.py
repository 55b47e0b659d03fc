"""The catalogue's rule language and deadlines, every shape the schema allows, in words and in
effect: the links with the UK (s.4(5)-(6)), the Schedule 1 exemptions, each deadline kind,
the notes of an Ofcom power, and a catalogue that names no children's access assessment.

Pure functions over the catalogue file, no database: `make mutation` runs them against every
mutant of obligations/catalogue/rules.py and commencement.py (issue 31).
"""

import dataclasses
import datetime as dt

import pytest

from obligations.catalogue.commencement import (
    AWAITING,
    EXPECTED,
    IN_FORCE,
    NOT_COMMENCED,
    UNKNOWN,
    children_likely_from,
    commenced_text,
    in_force,
    in_force_known,
    start_reason,
)
from obligations.catalogue.rules import (
    UK_LINKS,
    Profile,
    applicable_duties,
    describe_deadline,
    describe_rule,
    not_applicable_reason,
    notice_powers,
)

DAY = dt.date(2026, 11, 24)
NAMES = {"direct_messaging": "Direct messaging", "e2ee_messaging": "End-to-end encryption"}


# --- s.4(5)-(6): each limb of the links with the UK on its own -----------------------------


@pytest.mark.parametrize(
    ("limb", "words"),
    [
        ("uk_significant_users", "a significant number of UK users (s.4(5)(a))"),
        ("uk_target_market", "UK users are a target market (s.4(5)(b))"),
        (
            "uk_material_risk",
            "usable in the UK with a material risk of significant harm to people there (s.4(6))",
        ),
    ],
)
def test_s4_each_limb_alone_links_the_service_with_the_uk(limb, words):
    assert Profile(name="S", user_to_user=True, **{limb: True}).uk_links() == (True, [words])
    assert list(UK_LINKS) == ["uk_significant_users", "uk_target_market", "uk_material_risk"]


def test_a_profile_that_says_nothing_claims_nothing():
    """The empty profile: no kind, no category, no UK users, children's access not assessed,
    no limb recorded, revenue unknown, and para 4's twelve-month accounting period."""
    profile = Profile(name="New")
    assert profile == Profile(
        name="New",
        user_to_user=False,
        search=False,
        provider_pornography=False,
        categories=frozenset(),
        uk_monthly_users=0,
        children_likely_to_access=None,
        features=frozenset(),
        uk_significant_users=None,
        uk_target_market=None,
        uk_material_risk=None,
        qualifying_worldwide_revenue=None,
        accounting_period_months=12,
        no_accounting_period=False,
    )
    assert profile.kinds() == set()


# --- Deadlines: every kind in words ----------------------------------------------------------


@pytest.mark.parametrize(
    ("deadline", "words"),
    [
        ({"kind": "continuous", "basis": "act"}, "continuous (the Act)"),
        ({"kind": "per_notice", "basis": "act"}, "by the dates in Ofcom's notice (the Act)"),
        ({"kind": "per_report", "basis": "ofcom"}, "per report received (Ofcom guidance)"),
        (
            {"kind": "fees", "basis": "regulations"},
            "by the dates of the provider's fees position, per charging year (regulations)",
        ),
        ({"kind": "on_change", "basis": "house_policy"}, "on change (house policy)"),
    ],
)
def test_each_deadline_kind_reads_as_words_naming_its_basis(deadline, words):
    assert describe_deadline(deadline) == words


# --- The rule language in words: each key the schema allows ----------------------------------


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"categories_any": ["1", "2B"]}, "Category 1 or 2B"),
        (
            {"features_all": ["direct_messaging", "e2ee_messaging"]},
            "has \u2018Direct messaging\u2019 and \u2018End-to-end encryption\u2019",
        ),
        (
            {"any": [{"categories_any": ["1"]}, {"users_over": 7000000}]},
            "(Category 1 or more than 7,000,000 monthly UK users)",
        ),
    ],
)
def test_each_rule_shape_reads_as_words(rule, words):
    assert describe_rule(rule, NAMES) == words


# --- Why a duty does not apply ---------------------------------------------------------------


def _duty(catalogue_file, **applies):  # type: ignore[no-untyped-def]
    duty = next(d for d in catalogue_file.duties if d["applies"].get("regulated"))
    return {**duty, "applies": applies}


@pytest.mark.parametrize("code", ["email", "sms_mms", "one_to_one_aural"])
def test_sch1_an_exempt_service_is_told_which_paragraph_exempts_it(catalogue_file, code):
    exemption = next(e for e in catalogue_file.exemptions if e["code"] == code)
    profile = Profile(name="S", user_to_user=True, exemption=code)
    duty = _duty(catalogue_file, kinds_any=["user_to_user"], regulated=True)
    assert not_applicable_reason(catalogue_file, duty, profile) == (
        f"The service is exempt: {exemption['label']} ({exemption['paragraph']})."
    )


def test_no_links_with_the_uk_matter_only_to_a_rule_that_asks_for_regulation(catalogue_file):
    unlinked = Profile(
        name="S",
        uk_significant_users=False,
        uk_target_market=False,
        uk_material_risk=False,
    )
    regulated = _duty(catalogue_file, kinds_any=["user_to_user"], regulated=True)
    assert not_applicable_reason(catalogue_file, regulated, unlinked) == (
        "The service has no links with the UK (s.4(5)-(6)), so it is not regulated."
    )
    by_kind = _duty(catalogue_file, kinds_any=["user_to_user"])
    assert not_applicable_reason(catalogue_file, by_kind, unlinked) == (
        "The profile no longer meets the rule: user-to-user service."
    )


# --- The notes of an Ofcom power, and a catalogue without a children's access duty -----------


def test_a_powers_note_applies_when_its_rule_holds_even_with_no_fact_to_give(catalogue_file):
    """features_none holds without naming a fact: the note still applies."""
    power = {
        "section": "s.121",
        "title": "Technology notice",
        "why": "Ofcom may require accredited technology.",
        "applies": {"kinds_any": ["user_to_user"]},
        "notes": [
            {"applies": {"features_none": ["e2ee_messaging"]}, "text": "Not encrypted."},
            {"applies": {"features_any": ["e2ee_messaging"]}, "text": "Encrypted."},
        ],
    }
    catalogue = dataclasses.replace(catalogue_file, notice_powers=[power])
    [found] = notice_powers(catalogue, Profile(name="S", user_to_user=True))
    assert found["notes"] == ["Not encrypted."]
    assert found["why"] == (
        "Ofcom may require accredited technology. Reaches it as: user-to-user service."
    )


def test_s37_without_an_access_assessment_duty_no_service_is_dated_by_a_missed_one(
    catalogue_file,
):
    """s.37(4)-(5) dates a service from its missed access assessment; a catalogue naming no
    such duty gives the children's duties no such day, and still lists them."""
    parameters = {k: v for k, v in catalogue_file.parameters.items() if k != "children"}
    catalogue = dataclasses.replace(catalogue_file, parameters=parameters)
    profile = Profile(name="S", user_to_user=True, uk_significant_users=True)
    duties = {d.code: d for d in applicable_duties(catalogue, profile, day=DAY)}
    assert "U2U-ILLEGAL-RA" in duties
    assert all("s.37(4)-(5)" not in d.start_why for d in duties.values())


# --- Commencement: whether a duty is in force on a day, and why it applies from its start ----

SI = {"instrument": "SI 2023/1420 reg 2(c)", "note": "Awaiting the first code (s.51)."}


def duty(**fields):  # type: ignore[no-untyped-def]
    return {"code": "X", "commencement": SI, **fields}


@pytest.mark.parametrize(
    ("fields", "state", "since", "text"),
    [
        # Commenced on the day itself: in force (the day counts).
        (
            {"in_force_from": "2026-11-24"},
            IN_FORCE,
            dt.date(2026, 11, 24),
            "In force since 24 Nov 2026 (SI 2023/1420 reg 2(c)).",
        ),
        # Commenced from tomorrow: expected, with its day and instrument.
        (
            {"in_force_from": "2026-11-25"},
            EXPECTED,
            dt.date(2026, 11, 25),
            "Not yet in force: from 25 Nov 2026 (SI 2023/1420 reg 2(c)).",
        ),
        # No commencement found, the catalogue's finding verified (the default): not commenced.
        ({"in_force_from": None}, NOT_COMMENCED, None, "Not in force: not commenced."),
        (
            {"in_force_from": None, "verified": False},
            UNKNOWN,
            None,
            "Not known to be in force.",
        ),
        # s.51: commenced, but the duty waits for its first code (applies_from null).
        (
            {"in_force_from": "2024-01-10", "applies_from": None, "applies_note": "s.51(7)"},
            AWAITING,
            None,
            "Not yet in force: s.51(7). Its provision has been in force since 10 Jan 2024 "
            "(SI 2023/1420 reg 2(c)).",
        ),
    ],
)
def test_a_duty_is_in_force_from_its_day_and_says_by_which_instrument(fields, state, since, text):
    commencement = {"instrument": SI["instrument"]}
    found = in_force(duty(commencement=commencement, **fields), DAY)
    assert (found.state, found.since, found.text) == (state, since, text)


def test_a_not_commenced_duty_gives_its_catalogue_note():
    assert in_force(duty(in_force_from=None), DAY).text == (
        "Not in force: not commenced. Awaiting the first code (s.51)."
    )


@pytest.mark.parametrize(
    ("effective", "in_force_from", "verified", "known"),
    [
        (dt.date(2026, 11, 24), dt.date(2026, 11, 24), True, True),
        (None, None, False, None),  # unverified and no day: not known
        (None, None, True, False),  # verified as not commenced
        (None, dt.date(2024, 1, 10), False, False),  # commenced, waiting for its code
        (dt.date(2026, 11, 25), dt.date(2026, 11, 25), True, False),  # tomorrow
    ],
)
def test_in_force_known_from_a_duties_columns(effective, in_force_from, verified, known):
    assert in_force_known(effective, DAY, in_force_from=in_force_from, verified=verified) is known


def test_a_provision_never_commenced_has_no_commencement_words():
    assert commenced_text(duty(in_force_from=None)) == ""
    assert commenced_text(duty(in_force_from="2024-01-10")) == "10 Jan 2024 (SI 2023/1420 reg 2(c))"


def test_s37_only_a_missed_assessment_or_a_likely_finding_dates_the_childrens_duties():
    missed = dt.date(2025, 4, 16)
    assert children_likely_from(None, None, missed).since == missed  # s.37(4)-(5)
    assert children_likely_from(None, None, None) is None  # none was due
    assert children_likely_from(False, None, missed) is None  # assessed: not likely
    assert children_likely_from(True, None, missed) is None  # likely, but no day recorded
    assert children_likely_from(True, dt.date(2025, 6, 1), missed).since == dt.date(2025, 6, 1)


def test_a_duty_applies_from_the_launch_only_when_the_launch_is_the_latest_day():
    regular = duty(in_force_from="2024-01-10")
    launch = dt.date(2025, 2, 3)
    assert start_reason(regular, launch, launch=launch) == (
        "Applies from 3 Feb 2025: the day the service is first in scope (its UK launch)."
    )
    # Launched before the duty came into force: the duty's own day, with its instrument.
    assert start_reason(regular, dt.date(2024, 1, 10), launch=dt.date(2020, 1, 1)) == (
        "Applies from 10 Jan 2024, when the duty came into force (SI 2023/1420 reg 2(c))."
    )
    assert start_reason(regular, dt.date(2024, 1, 10), launch=None) == (
        "Applies from 10 Jan 2024, when the duty came into force (SI 2023/1420 reg 2(c))."
    )
    no_instrument = {**regular, "commencement": {}}
    assert start_reason(no_instrument, dt.date(2024, 1, 10), launch=None) == (
        "Applies from 10 Jan 2024, when the duty came into force (the Act)."
    )
