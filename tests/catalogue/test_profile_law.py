"""A service profile read from a file (the `applicable_duties` command, the API): every field it
may hold, each refused value naming its field, and the edges of each range.

In-process and without a database, unlike the command's own tests (which run it in a
subprocess): `make mutation` runs these against every mutant of
obligations/catalogue/profiles.py (issue 31).
"""

import datetime as dt
from decimal import Decimal

import pytest

from obligations.catalogue.profiles import PROFILE_FIELDS, ProfileError, parse_profile
from obligations.catalogue.rules import Profile

BASE = {"name": "Chatter", "user_to_user": True, "search": False}
EVERY_FIELD = {
    "name": "  Chatter  ",
    "user_to_user": True,
    "search": True,
    "provider_pornography": True,
    "category": ["1", "2B"],
    "uk_monthly_users": 7_000_001,
    "children_likely_to_access": False,
    "features": ["e2ee_messaging"],
    "launch_date": "2025-02-03",
    "uk_significant_users": True,
    "uk_target_market": False,
    "uk_material_risk": None,
    "exemption": "email",
    "qualifying_worldwide_revenue": "250000000.00",
    "accounting_period_months": 18,
    "no_accounting_period": True,
}


def test_every_field_a_profile_may_hold_is_read(catalogue_file):
    assert set(EVERY_FIELD) == set(PROFILE_FIELDS)
    assert parse_profile(EVERY_FIELD, catalogue_file) == Profile(
        name="Chatter",
        user_to_user=True,
        search=True,
        provider_pornography=True,
        categories=frozenset({"1", "2B"}),
        uk_monthly_users=7_000_001,
        children_likely_to_access=False,
        features=frozenset({"e2ee_messaging"}),
        launch_date=dt.date(2025, 2, 3),
        uk_significant_users=True,
        uk_target_market=False,
        uk_material_risk=None,
        exemption="email",
        qualifying_worldwide_revenue=Decimal("250000000.00"),
        accounting_period_months=18,
        no_accounting_period=True,
    )


def test_the_least_a_profile_may_say(catalogue_file):
    """Only the three required fields: no category, no users, a twelve-month accounting
    period (Sch.13 para 4), nothing else recorded."""
    assert parse_profile(BASE, catalogue_file) == Profile(name="Chatter", user_to_user=True)
    search = parse_profile({**BASE, "user_to_user": False, "search": True}, catalogue_file)
    assert search.kinds() == {"search"}
    porn = parse_profile(
        {**BASE, "user_to_user": False, "provider_pornography": True}, catalogue_file
    )
    assert porn.kinds() == {"provider_pornography"}


@pytest.mark.parametrize("name", ["name", "user_to_user", "search"])
def test_each_required_field_is_named_when_missing(catalogue_file, name):
    data = {k: v for k, v in BASE.items() if k != name}
    with pytest.raises(ProfileError) as error:
        parse_profile(data, catalogue_file)
    assert (error.value.field, error.value.reason) == (
        name,
        f"is required ({PROFILE_FIELDS[name]})",
    )


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"name": "   "}, "name", "must be a string, not '   '"),
        ({"name": 5}, "name", "must be a string, not 5"),
        ({"user_to_user": "yes"}, "user_to_user", "must be true or false, not 'yes'"),
        ({"search": 1}, "search", "must be true or false, not 1"),
        ({"provider_pornography": None}, "provider_pornography", "must be true or false, not None"),
        ({"category": []}, "category", None),
        ({"category": [1]}, "category", None),
        ({"category": "3"}, "category", "has unknown category '3' (known: 1, 2A, 2B, none)"),
        ({"category": ["none", "1"]}, "category", "cannot combine 'none' with a category"),
        ({"uk_monthly_users": -1}, "uk_monthly_users", None),
        ({"uk_monthly_users": 1.5}, "uk_monthly_users", None),
        ({"uk_monthly_users": True}, "uk_monthly_users", None),
        ({"children_likely_to_access": "maybe"}, "children_likely_to_access", None),
        ({"uk_significant_users": "yes"}, "uk_significant_users", None),
        ({"uk_target_market": 1}, "uk_target_market", None),
        ({"uk_material_risk": "no"}, "uk_material_risk", None),
        (
            {"features": "e2ee_messaging"},
            "features",
            "must be a list of feature names, not 'e2ee_messaging'",
        ),
        ({"features": [1]}, "features", "must be a list of feature names, not [1]"),
        ({"features": ["teleport"]}, "features", None),
        ({"launch_date": "24/11/2026"}, "launch_date", None),
        ({"launch_date": 20261124}, "launch_date", None),
        ({"launch_date": "1066-10-14"}, "launch_date", None),
        ({"exemption": ["email"]}, "exemption", "must be an exemption code, not ['email']"),
        ({"exemption": "vibes"}, "exemption", None),
        ({"qualifying_worldwide_revenue": "0.001"}, "qualifying_worldwide_revenue", None),
        ({"accounting_period_months": 0}, "accounting_period_months", None),
        ({"accounting_period_months": 61}, "accounting_period_months", None),
        ({"accounting_period_months": True}, "accounting_period_months", None),
        ({"accounting_period_months": "12"}, "accounting_period_months", None),
        ({"no_accounting_period": "no"}, "no_accounting_period", None),
        ({"colour": "blue"}, "colour", None),
    ],
)
def test_a_wrong_value_is_refused_naming_its_field(catalogue_file, change, field, reason):
    with pytest.raises(ProfileError) as error:
        parse_profile({**BASE, **change}, catalogue_file)
    assert error.value.field == field
    assert str(error.value).startswith(f"field {field!r} ")
    if reason is not None:
        assert error.value.reason == reason


def test_a_profile_of_no_kind_is_refused_as_a_whole(catalogue_file):
    with pytest.raises(ProfileError) as error:
        parse_profile({**BASE, "user_to_user": False}, catalogue_file)
    assert error.value.field is None
    assert str(error.value) == (
        "the profile must be user_to_user, search or provider_pornography (at least one true)"
    )
    with pytest.raises(ProfileError, match="must be a JSON object"):
        parse_profile(["Chatter"], catalogue_file)


@pytest.mark.parametrize(
    ("change", "read"),
    [
        ({"uk_monthly_users": 0}, ("uk_monthly_users", 0)),
        ({"accounting_period_months": 1}, ("accounting_period_months", 1)),
        ({"accounting_period_months": 60}, ("accounting_period_months", 60)),
        ({"category": "none"}, ("categories", frozenset())),
        ({"category": ["2A"]}, ("categories", frozenset({"2A"}))),
        ({"children_likely_to_access": None}, ("children_likely_to_access", None)),
        ({"launch_date": None}, ("launch_date", None)),
        ({"exemption": None}, ("exemption", None)),
        ({"qualifying_worldwide_revenue": "0"}, ("qualifying_worldwide_revenue", Decimal(0))),
    ],
)
def test_the_edges_of_each_range_are_accepted(catalogue_file, change, read):
    profile = parse_profile({**BASE, **change}, catalogue_file)
    assert getattr(profile, read[0]) == read[1]
