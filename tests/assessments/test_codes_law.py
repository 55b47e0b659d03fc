"""Ofcom's Codes measures evaluated as the Codes put them, without a database: "large" is more
than 7 million monthly UK users, "multi-risk" counts kinds of harm with CSEA's parts once,
each Code's family, the kinds of content harmful to children (s.62) apart from the primary
priority ones, and a harm left unrated is not at any level.

`make mutation` runs these against every mutant of obligations/assessments/codes.py
(issue 31); tests/assessments/test_assessments.py has the register's side.
"""

import datetime as dt
from typing import Any

import pytest

from obligations.assessments.codes import CODE_TITLES, FAMILY_OF_CODE, Facts, recommend

TODAY = dt.date(2026, 11, 24)


@pytest.fixture(scope="module")
def catalogue(catalogue_file):  # type: ignore[no-untyped-def]
    return catalogue_file


def harms_of(catalogue) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    return {
        h["code"]: {"family": h["family"], "group": h["group"], "label": h["label"]}
        for h in catalogue.harm_kinds
    }


def verdict(catalogue, rule, family="ICU", harms=None, **facts):  # type: ignore[no-untyped-def]
    """One in-force measure of `family` with the rule `rule`, for a service of `facts`."""
    measure = {
        "code": f"{family} X1",
        "code_family": family,
        "recommended_for": rule,
        "status": "in_force",
        "effective_from": dt.date(2025, 3, 17),
    }
    defaults: dict[str, Any] = {
        "users": 0,
        "features": frozenset(),
        "categories": frozenset(),
        "children_likely": True,
        "levels": {},
    }
    [found] = recommend(
        [measure],
        Facts(**{**defaults, **facts}),
        code_families=[family],
        params=catalogue.parameters["assessment"],
        harms=harms or harms_of(catalogue),
        feature_names=catalogue.feature_names,
        today=TODAY,
    )
    return found.recommended, found.why


def test_the_four_codes_by_family_and_name():
    assert FAMILY_OF_CODE == {
        "ICU": "illegal",
        "ICS": "illegal",
        "PCU": "children",
        "PCS": "children",
    }
    assert CODE_TITLES == {
        "ICU": "Illegal content Code, user-to-user services",
        "ICS": "Illegal content Code, search services",
        "PCU": "Protection of children Code, user-to-user services",
        "PCS": "Protection of children Code, search services",
    }


@pytest.mark.parametrize(
    ("users", "large", "words"),
    [
        (7_000_000, False, "not large: 7,000,000 monthly UK users (at most 7,000,000)"),
        (7_000_001, True, "large: 7,000,001 monthly UK users (more than 7,000,000)"),
    ],
)
def test_a_large_service_has_more_than_7_million_monthly_uk_users(catalogue, users, large, words):
    """ICU's definitions: a large service has more than 7 million monthly UK users, so 7
    million exactly is not large."""
    unmet = (False, "its conditions are not met")
    assert verdict(catalogue, {"large": True}, users=users) == ((True, words) if large else unmet)
    assert verdict(catalogue, {"large": False}, users=users) == (unmet if large else (True, words))


@pytest.mark.parametrize("family", ["PCU", "PCS"])
def test_a_children_codes_risk_is_set_by_the_childrens_assessment(catalogue, family):
    rule = {"risk": {"harms": "any", "at_least": "high"}}
    children = {"children": {"pornography": 3}}
    assert verdict(catalogue, rule, family, levels=children) == (
        True,
        "high or higher risk of Pornographic content",
    )
    illegal_only = {"illegal": {"terrorism": 3}}
    assert verdict(catalogue, rule, family, levels=illegal_only) == (
        None,
        "Depends on the risk assessment: no children risk assessment with levels yet",
    )


def test_priority_content_harmful_to_children_is_not_the_primary_priority_kinds(catalogue):
    """s.62: "children_pc" names the priority content (abuse, bullying, ...), not the primary
    priority content of s.61 (pornography, suicide, self-injury, eating disorders)."""
    rule = {"risk": {"harms": "children_pc", "at_least": "medium"}}
    assert verdict(catalogue, rule, "PCU", levels={"children": {"bullying": 2}})[0] is True
    assert verdict(catalogue, rule, "PCU", levels={"children": {"pornography": 3}})[0] is False


def test_a_harm_left_unrated_is_at_no_level_not_low(catalogue):
    rule = {"risk": {"harms": ["terrorism"], "at_least": "low"}}
    assert verdict(catalogue, rule, levels={"illegal": {"fraud": 3}})[0] is False
    assert verdict(catalogue, rule, levels={"illegal": {"terrorism": 1}}) == (
        True,
        "low or higher risk of Terrorism",
    )


def test_multi_risk_counts_csea_once_by_its_groups_name(catalogue):
    """ICU para 5.6: two or more kinds at medium or higher, CSEA's rows 2A-2C counting once."""
    levels = {"illegal": {"csea_grooming": 2, "csea_image": 3, "terrorism": 2, "fraud": 1}}
    assert verdict(catalogue, {"multi_risk": True}, levels=levels) == (
        True,
        "medium or higher risk for 2 kind(s) (CSEA, Terrorism)",
    )
    csea_only = {"illegal": {"csea_grooming": 2, "csea_image": 3, "csea_urls": 2}}
    assert verdict(catalogue, {"multi_risk": True}, levels=csea_only)[0] is False


def test_a_group_is_named_by_its_own_harm_where_it_has_one(catalogue):
    """A group with a harm of its own code is named by that harm's label, whichever order the
    harms come in; its parts' common prefix names it only where it has none."""
    own = {"family": "illegal", "group": "csea", "label": "Child sexual exploitation and abuse"}
    part = {"family": "illegal", "group": "csea", "label": "CSEA: grooming"}
    other = {"family": "illegal", "group": "fraud", "label": "Fraud"}
    levels = {"illegal": {"csea": 2, "csea_grooming": 2, "fraud": 2}}
    words = "medium or higher risk for 2 kind(s) (Child sexual exploitation and abuse, Fraud)"
    for harms in (
        {"csea": own, "csea_grooming": part, "fraud": other},
        {"csea_grooming": part, "csea": own, "fraud": other},
    ):
        assert verdict(catalogue, {"multi_risk": True}, harms=harms, levels=levels) == (
            True,
            words,
        )


def test_users_over_is_strictly_more(catalogue):
    rule = {"users_over": 700_000}
    assert verdict(catalogue, rule, users=700_000)[0] is False
    assert verdict(catalogue, rule, users=700_001) == (
        True,
        "700,001 monthly UK users (more than 700,000)",
    )


@pytest.mark.parametrize(
    ("status", "effective", "expected"),
    [
        ("laid", dt.date(2025, 3, 17), (False, "laid, not in force")),
        ("in_force", None, (False, "in_force, not in force")),
        # s.43(4)(b): in force at the end of 21 days from issue; from that day, not before.
        ("in_force", dt.date(2026, 11, 25), (False, "in force from 25 Nov 2026")),
        ("in_force", TODAY, (True, "recommended for every service the Code covers")),
    ],
)
def test_only_a_measure_in_force_is_recommended(catalogue, status, effective, expected):
    measure = {
        "code": "ICU X1",
        "code_family": "ICU",
        "recommended_for": {},
        "status": status,
        "effective_from": effective,
    }
    [found] = recommend(
        [measure],
        Facts(users=0, features=frozenset(), categories=frozenset(), children_likely=True),
        code_families=["ICU"],
        params=catalogue.parameters["assessment"],
        harms=harms_of(catalogue),
        feature_names=catalogue.feature_names,
        today=TODAY,
    )
    assert (found.recommended, found.why) == expected
