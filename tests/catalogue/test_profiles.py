"""Hand-written profiles with their exact expected duties (issue: the tracker's core)."""

import pytest

from obligations.catalogue.profiles import parse_profile
from obligations.catalogue.rules import applicable_duties, likely_categories
from tests.conftest import TODAY

U2U_BASE = {
    "U2U-ILLEGAL-RA",
    "U2U-ILLEGAL-SAFETY",
    "U2U-NCII-48H",
    "U2U-NCII-REPORT",
    "U2U-NCII-EXPEDITED-COMPLAINTS",
    "U2U-REPORTING",
    "U2U-COMPLAINTS",
    "U2U-FOE-PRIVACY",
    "U2U-RECORDS",
    "CAA",
    "CSEA-NCA-REPORT",
    "TOS-RIGHT-TO-SUE",
}
U2U_CHILDREN = {"U2U-CHILD-RA", "U2U-CHILD-SAFETY"}
U2U_CAT1 = {
    "U2U-ILLEGAL-RA-SUMMARY",
    "U2U-UE-ASSESS",
    "U2U-UE",
    "U2U-DEMOCRATIC",
    "U2U-NEWS",
    "U2U-JOURNALISTIC",
    "FRAUD-ADS-C1",
    "USER-ID-VERIFY",
    "TOS-DUTIES",
    "DECEASED-CHILD",
    "TRANSPARENCY",
    "U2U-RA-COPY-OFCOM",
    "U2U-FOE-IMPACT-C1",
}
SEARCH_BASE = {
    "SEARCH-ILLEGAL-RA",
    "SEARCH-ILLEGAL-SAFETY",
    "SEARCH-REPORTING",
    "SEARCH-COMPLAINTS",
    "SEARCH-FOE",
    "SEARCH-RECORDS",
    "SEARCH-NCII-48H",
    "CAA",
    "CSEA-NCA-REPORT-SEARCH",
}
SEARCH_CHILDREN = {"SEARCH-CHILD-RA", "SEARCH-CHILD-SAFETY"}
SEARCH_CAT2A = {"SEARCH-RA-COPY-OFCOM", "FRAUD-ADS-C2A", "DECEASED-CHILD", "TRANSPARENCY"}
CATEGORISED = {"DECEASED-CHILD", "TRANSPARENCY"}
FEES = {"FEES-NOTIFY", "FEES-PAY"}

PROFILES = [
    (
        {
            "name": "Small hobby forum",
            "user_to_user": True,
            "search": False,
            "category": "none",
            "uk_monthly_users": 40_000,
            "children_likely_to_access": False,
            "features": ["file_sharing"],
            "qualifying_worldwide_revenue": "2000000",
        },
        U2U_BASE,
    ),
    (
        {
            "name": "Forum with no children's access assessment",
            "user_to_user": True,
            "search": False,
            "uk_monthly_users": 40_000,
            "children_likely_to_access": None,
        },
        U2U_BASE | U2U_CHILDREN | FEES,
    ),
    (
        {
            "name": "Children's game with chat",
            "user_to_user": True,
            "search": False,
            "uk_monthly_users": 600_000,
            "children_likely_to_access": True,
            # Its terms prohibit all primary priority content for all users, so no age
            # assurance duty (s.12(5)), even though not all of it can be taken down.
            "features": ["direct_messaging", "livestreaming", "ppc_takedown_not_feasible"],
            "qualifying_worldwide_revenue": "5000000",
        },
        U2U_BASE | U2U_CHILDREN,
    ),
    (
        {
            "name": "Adult content sharing site",
            "user_to_user": True,
            "search": False,
            "uk_monthly_users": 2_000_000,
            "children_likely_to_access": True,
            "features": ["user_pornography", "ppc_principal_purpose"],
            "qualifying_worldwide_revenue": "300000000",
        },
        U2U_BASE | U2U_CHILDREN | {"U2U-CHILD-HEAA"} | FEES,
    ),
    (
        {
            "name": "Category 1 social network",
            "user_to_user": True,
            "search": False,
            "category": "1",
            "uk_monthly_users": 40_000_000,
            "children_likely_to_access": True,
            "features": ["recommender", "forwarding", "e2ee_messaging", "advertising"],
            "qualifying_worldwide_revenue": "2500000000",
        },
        U2U_BASE | U2U_CHILDREN | U2U_CAT1 | {"U2U-CHILD-RA-SUMMARY"} | FEES,
    ),
    (
        {
            "name": "Category 1 adults-only network",
            "user_to_user": True,
            "search": False,
            "category": ["1"],
            "uk_monthly_users": 8_000_000,
            "children_likely_to_access": False,
            # Adults only: primary priority content allowed, and no children's duties.
            "features": ["recommender", "forwarding", "ppc_not_prohibited"],
            "qualifying_worldwide_revenue": "100000000",
        },
        U2U_BASE | U2U_CAT1,
    ),
    (
        {
            "name": "Category 2B messenger",
            "user_to_user": True,
            "search": False,
            "category": "2B",
            "uk_monthly_users": 4_000_000,
            "children_likely_to_access": False,
            "features": ["e2ee_messaging"],
            "qualifying_worldwide_revenue": "10000000",
        },
        U2U_BASE | CATEGORISED,
    ),
    (
        {
            "name": "Small search engine",
            "user_to_user": False,
            "search": True,
            "uk_monthly_users": 90_000,
            "children_likely_to_access": False,
            "qualifying_worldwide_revenue": "1000000",
        },
        SEARCH_BASE,
    ),
    (
        {
            "name": "Category 2A search at the fees threshold",
            "user_to_user": False,
            "search": True,
            "category": "2A",
            "uk_monthly_users": 9_000_000,
            "children_likely_to_access": None,
            "features": ["advertising"],
            "qualifying_worldwide_revenue": "250000000",
        },
        SEARCH_BASE | SEARCH_CHILDREN | SEARCH_CAT2A | FEES,
    ),
    (
        {
            "name": "Combined service in two parts of the register",
            "user_to_user": True,
            "search": True,
            "category": ["1", "2A"],
            "uk_monthly_users": 50_000_000,
            "children_likely_to_access": True,
            "features": ["recommender"],
            "qualifying_worldwide_revenue": "249999999.99",
        },
        U2U_BASE
        | U2U_CHILDREN
        | U2U_CAT1
        | {"U2U-CHILD-RA-SUMMARY"}
        | SEARCH_BASE
        | SEARCH_CHILDREN
        | SEARCH_CAT2A,
    ),
    (
        {
            "name": "Product reviews only (exempt)",
            "user_to_user": True,
            "search": False,
            "uk_monthly_users": 1_000_000,
            "children_likely_to_access": True,
            "exemption": "limited_functionality",
        },
        set(),
    ),
    (
        {
            "name": "Studio publishing its own pornography",
            "user_to_user": False,
            "search": False,
            "provider_pornography": True,
            "uk_monthly_users": 500_000,
        },
        {"PORN-AGE-CHECK"},
    ),
    (
        {
            "name": "Exempt comments plus provider pornography",
            "user_to_user": True,
            "search": False,
            "provider_pornography": True,
            "exemption": "limited_functionality",
            "uk_monthly_users": 500_000,
            "children_likely_to_access": False,
        },
        {"PORN-AGE-CHECK"},
    ),
    (
        {
            "name": "Vertical flight search",
            "user_to_user": False,
            "search": True,
            "uk_monthly_users": 9_000_000,
            "children_likely_to_access": False,
            "features": ["vertical_search"],
            "qualifying_worldwide_revenue": "0",
        },
        SEARCH_BASE,
    ),
]


@pytest.mark.parametrize(("data", "expected"), PROFILES, ids=[p["name"] for p, _ in PROFILES])
def test_profile_gets_exactly_its_duties(catalogue_file, data, expected):
    profile = parse_profile(data, catalogue_file)
    assert {d.code for d in applicable_duties(catalogue_file, profile, day=TODAY)} == expected


@pytest.mark.parametrize("features", [["ppc_not_prohibited"], ["ppc_principal_purpose"]])
def test_age_assurance_is_owed_for_any_primary_priority_content_not_prohibited(
    catalogue_file, features
):
    """s.12(4)-(6): highly effective age verification or estimation for each kind of primary
    priority content (s.61: pornography, suicide, self-injury, eating disorders) unless a term
    prohibits that kind for all users. A forum allowing self-injury content owes it."""
    profile = parse_profile(
        {
            "name": "Recovery forum",
            "user_to_user": True,
            "search": False,
            "uk_monthly_users": 80_000,
            "children_likely_to_access": True,
            "features": features,
        },
        catalogue_file,
    )
    codes = {d.code for d in applicable_duties(catalogue_file, profile, day=TODAY)}
    assert "U2U-CHILD-HEAA" in codes


def test_every_catalogue_duty_is_expected_somewhere(catalogue_file):
    """Each profile duty is reached by some profile; notice duties by none (a notice makes them)."""
    expected = set().union(*(codes for _, codes in PROFILES))
    by_notice = {d["code"] for d in catalogue_file.duties if "notice" in d["applies"]}
    assert by_notice and not by_notice & expected
    assert {d["code"] for d in catalogue_file.duties} == expected | by_notice


def test_profiles_cover_every_kind_category_feature_and_children_state(catalogue_file):
    profiles = [data for data, _ in PROFILES]
    assert {f for p in profiles for f in p.get("features", [])} == catalogue_file.feature_codes
    categories = {
        c
        for p in profiles
        for c in (
            p["category"] if isinstance(p.get("category"), list) else [p.get("category", "none")]
        )
    }
    assert categories == catalogue_file.category_codes | {"none"}
    assert {p.get("children_likely_to_access") for p in profiles} == {True, False, None}
    for kind in ("user_to_user", "search", "provider_pornography"):
        assert any(p.get(kind) for p in profiles), kind


@pytest.mark.parametrize(
    "exemption",
    [
        "email",
        "sms_mms",
        "one_to_one_aural",
        "limited_functionality",
        "internal_business",
        "public_body",
        "education_childcare",
    ],
)
def test_every_exemption_removes_all_regulated_service_duties(catalogue_file, exemption):
    assert exemption in catalogue_file.exemption_codes
    profile = parse_profile(
        {
            "name": "x",
            "user_to_user": True,
            "search": True,
            "category": "1",
            "exemption": exemption,
        },
        catalogue_file,
    )
    assert applicable_duties(catalogue_file, profile, day=TODAY) == []


def test_why_names_the_profile_facts(catalogue_file):
    profile = parse_profile(PROFILES[1][0], catalogue_file)
    why = {d.code: d.why for d in applicable_duties(catalogue_file, profile, day=TODAY)}
    assert "no children's access assessment is recorded (s.37(4)-(5))" in why["U2U-CHILD-RA"]
    assert "qualifying worldwide revenue is not recorded" in why["FEES-NOTIFY"]
    cat1 = parse_profile(PROFILES[4][0], catalogue_file)
    why = {d.code: d.why for d in applicable_duties(catalogue_file, cat1, day=TODAY)}
    assert "Category 1 (declared from Ofcom's register)" in why["U2U-UE"]


def test_due_dates_follow_the_rule(catalogue_file):
    existing = parse_profile(PROFILES[0][0], catalogue_file)
    due = {d.code: d for d in applicable_duties(catalogue_file, existing, day=TODAY)}
    assert str(due["U2U-ILLEGAL-RA"].due) == "2025-03-16"
    assert due["U2U-ILLEGAL-RA"].due_rule == "recurring"
    assert due["U2U-REPORTING"].due is None and due["U2U-REPORTING"].due_rule == "continuous"
    assert due["CSEA-NCA-REPORT"].due_rule == "per_report"
    launching = parse_profile({**PROFILES[0][0], "launch_date": "2027-02-01"}, catalogue_file)
    due = {d.code: d for d in applicable_duties(catalogue_file, launching, day=TODAY)}
    # Sch.3 para 3: within the three months beginning with the first day, 1 Feb 2027.
    assert str(due["U2U-ILLEGAL-RA"].due) == "2027-04-30"
    assert "Sch.3 paras 2(3), 3, 4" in due["U2U-ILLEGAL-RA"].due_rule_text


@pytest.mark.parametrize(
    ("data", "likely"),
    [
        (
            {"user_to_user": True, "uk_monthly_users": 34_000_001, "features": ["recommender"]},
            ["1"],
        ),
        ({"user_to_user": True, "uk_monthly_users": 34_000_000, "features": ["recommender"]}, []),
        (
            {
                "user_to_user": True,
                "uk_monthly_users": 7_000_001,
                "features": ["recommender", "forwarding"],
            },
            ["1"],
        ),
        # Category 1 and 2B: only the Category 1 part of the register (s.95).
        (
            {
                "user_to_user": True,
                "uk_monthly_users": 40_000_000,
                "features": ["recommender", "e2ee_messaging"],
            },
            ["1"],
        ),
        (
            {"user_to_user": True, "uk_monthly_users": 3_000_001, "features": ["e2ee_messaging"]},
            ["2B"],
        ),
        (
            {"user_to_user": True, "uk_monthly_users": 3_000_000, "features": ["direct_messaging"]},
            [],
        ),
        ({"search": True, "uk_monthly_users": 7_000_001}, ["2A"]),
        ({"search": True, "uk_monthly_users": 9_000_000, "features": ["vertical_search"]}, []),
        (
            {
                "user_to_user": True,
                "search": True,
                "uk_monthly_users": 8_000_000,
                "features": ["recommender", "forwarding"],
            },
            ["1", "2A"],
        ),
    ],
)
def test_likely_category_from_the_thresholds(catalogue_file, data, likely):
    profile = parse_profile(
        {"name": "x", "user_to_user": False, "search": False, **data}, catalogue_file
    )
    assert [code for code, _ in likely_categories(catalogue_file, profile)] == likely
