"""The catalogue's rule language and deadlines, every shape the schema allows, in words and in
effect: the links with the UK (s.4(5)-(6)), the Schedule 1 exemptions, each deadline kind,
the notes of an Ofcom power, and a catalogue that names no children's access assessment.

Pure functions over the catalogue file, no database: `make mutation` runs them against every
mutant of obligations/catalogue/rules.py and commencement.py (issue 31).
"""

import dataclasses
import datetime as dt

import pytest

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
