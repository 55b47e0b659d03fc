"""`manage.py applicable_duties`: the answer before launch, and clear refusals."""

import json
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command


def run(tmp_path, profile, *args):  # type: ignore[no-untyped-def]
    path = tmp_path / "profile.json"
    path.write_text(profile if isinstance(profile, str) else json.dumps(profile))
    return subprocess.run(
        [sys.executable, "manage.py", "applicable_duties", "--profile", str(path), *args],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


REVENUE = "must be an amount in pounds from 0 to 99,999,999,999,999.99,"
PROFILE = {
    "name": "Chatter",
    "user_to_user": True,
    "search": False,
    "category": "2B",
    "uk_monthly_users": 4_000_000,
    "children_likely_to_access": False,
    "features": ["e2ee_messaging"],
    "qualifying_worldwide_revenue": "1000000",
    "uk_target_market": True,
}


def test_json_lists_every_duty_with_section_why_and_due(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(PROFILE))
    call_command("applicable_duties", "--profile", str(path), "--json")
    out = json.loads(capsys.readouterr().out)
    by_code = {d["code"]: d for d in out["duties"]}
    assert set(by_code["U2U-ILLEGAL-RA"]) >= {"code", "section", "title", "why", "due", "due_rule"}
    assert by_code["U2U-ILLEGAL-RA"]["section"] == "s.9"
    assert by_code["U2U-ILLEGAL-RA"]["due"] == "2025-03-16"
    assert by_code["U2U-REPORTING"]["due"] is None
    assert by_code["U2U-REPORTING"]["due_rule"] == "continuous"
    assert by_code["TRANSPARENCY"]["due_rule"] == "per_notice"
    assert by_code["TRANSPARENCY"]["why"] == (
        "links with the UK: UK users are a target market (s.4(5)(b)); "
        "Category 2B (declared from Ofcom's register)"
    )
    assert out["likely_categories"][0]["code"] == "2B"
    assert "U2U-CHILD-RA" not in by_code


def test_json_says_for_each_duty_whether_it_is_in_force_and_by_which_instrument(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**PROFILE, "category": "1"}))
    call_command("applicable_duties", "--profile", str(path), "--json")
    by_code = {d["code"]: d for d in json.loads(capsys.readouterr().out)["duties"]}
    ra = by_code["U2U-ILLEGAL-RA"]
    assert (ra["in_force"], ra["in_force_from"]) == (True, "2024-01-10")
    assert ra["commencement"]["instrument"].startswith("SI 2023/1420 reg 2(c)")
    assert ra["commencement"]["url"] == "https://www.legislation.gov.uk/uksi/2023/1420/regulation/2"
    # The Act places it on a Category 1 service, but s.18 was never commenced (as far as
    # found): listed, not in force as far as known, never due.
    news = by_code["U2U-NEWS"]
    assert (news["in_force"], news["in_force_from"], news["due"]) == (None, None, None)
    assert news["in_force_text"].startswith("Not known to be in force.")
    # s.38 is in force, but the duty waits for the first fraudulent advertising code (s.51(7)).
    fraud = by_code["FRAUD-ADS-C1"]
    assert (fraud["in_force"], fraud["due"]) == (False, None)
    assert "s.51(7)" in fraud["in_force_text"]


def test_table_is_readable(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(PROFILE))
    call_command("applicable_duties", "--profile", str(path))
    out = capsys.readouterr().out
    assert "Chatter: 14 duties apply" in out
    assert "Register category declared: 2B; likely from thresholds: 2B" in out
    assert "U2U-ILLEGAL-RA" in out and "why: user-to-user service" in out
    assert "In force since 10 Jan 2024 (SI 2023/1420 reg 2(c))." in out


def test_needs_no_database(tmp_path):
    result = run(tmp_path, PROFILE, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "Chatter"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "blue"}, "field 'colour' is not a profile field"),
        ({"user_to_user": "yes"}, "field 'user_to_user' must be true or false, not 'yes'"),
        ({"uk_monthly_users": -5}, "field 'uk_monthly_users' must be a whole number"),
        ({"uk_monthly_users": 1.5}, "field 'uk_monthly_users' must be a whole number"),
        ({"category": "3"}, "unknown category '3'"),
        ({"features": ["teleport"]}, "unknown feature 'teleport'"),
        ({"children_likely_to_access": "maybe"}, "field 'children_likely_to_access'"),
        ({"launch_date": "24/11/2026"}, "field 'launch_date' must be a YYYY-MM-DD date"),
        ({"exemption": "vibes"}, "unknown exemption 'vibes'"),
        ({"qualifying_worldwide_revenue": 12}, "field 'qualifying_worldwide_revenue'"),
        *(
            ({"qualifying_worldwide_revenue": text}, f"{REVENUE} to the penny, as a decimal")
            for text in ("1e27", "NaN", "Infinity", "-Infinity", "-1", "0.001", "1" * 15)
        ),
        ({"exemption": ["internal_business"]}, "field 'exemption' must be an exemption code"),
        ({"user_to_user": False}, "at least one true"),
        ({"accounting_period_months": 0}, "field 'accounting_period_months'"),
        ({"accounting_period_months": "12"}, "field 'accounting_period_months'"),
        ({"no_accounting_period": "no"}, "field 'no_accounting_period' must be true or false"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line_naming_the_field(tmp_path, change, message):
    result = run(tmp_path, {**PROFILE, **change})
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_field_and_malformed_json_are_refused(tmp_path):
    result = run(tmp_path, {"name": "x", "user_to_user": True})
    assert result.returncode != 0 and "field 'search' is required" in result.stderr
    result = run(tmp_path, "{not json")
    assert result.returncode != 0 and "is not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    deep = '{"name": "x", "user_to_user": true, "features": ' + "[" * 50_000 + "]" * 50_000 + "}"
    result = run(tmp_path, deep)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("is not valid JSON (nested more than 32 levels deep)")


def answer(tmp_path, capsys, **change):  # type: ignore[no-untyped-def]
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**PROFILE, **change}))
    call_command("applicable_duties", "--profile", str(path), "--json")
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("change", "cap", "rule", "fees"),
    [
        ({"qualifying_worldwide_revenue": "0"}, "18000000.00", "Sch.13 para 4(1)", False),
        (
            {"qualifying_worldwide_revenue": "180000001"},
            "18000000.10",
            "Sch.13 para 4(1)",
            False,
        ),
        (
            {"qualifying_worldwide_revenue": "2500000000"},
            "250000000.00",
            "Sch.13 para 4(1)",
            True,
        ),
        (
            {"qualifying_worldwide_revenue": "250000000"},
            "25000000.00",
            "Sch.13 para 4(1)",
            True,
        ),
        (
            {"qualifying_worldwide_revenue": "100000000", "accounting_period_months": 6},
            "20000000.00",
            "Sch.13 para 4(1) and 4(5)",
            False,
        ),
        (
            {"qualifying_worldwide_revenue": "300000000", "accounting_period_months": 18},
            "20000000.00",
            "Sch.13 para 4(1) and 4(5)",
            True,
        ),
        ({"no_accounting_period": True}, "18000000.00", "Sch.13 para 4(2)", False),
    ],
)
def test_json_gives_the_penalty_cap_and_fees(tmp_path, capsys, change, cap, rule, fees):
    out = answer(tmp_path, capsys, **change)
    assert out["max_penalty_gbp"] == cap
    assert out["penalty_rule"] == rule
    assert out["fees_notification_required"] is fees


def test_json_without_revenue_has_no_cap_and_unknown_fees(tmp_path, capsys):
    profile = {k: v for k, v in PROFILE.items() if k != "qualifying_worldwide_revenue"}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile))
    call_command("applicable_duties", "--profile", str(path), "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["max_penalty_gbp"] is None
    assert out["fees_notification_required"] is None
    assert "not given" in out["penalty_explanation"]


def test_json_lists_the_notice_powers_that_could_reach_the_profile(tmp_path, capsys):
    messaging = answer(tmp_path, capsys)
    titles = {p["title"]: p for p in messaging["notice_powers"]}
    keys = {"section", "title", "why", "notes", "conditions", "prerequisites"}
    assert all(set(p) == keys for p in messaging["notice_powers"])
    private = titles["Technology Notice: CSEA content communicated privately"]
    assert private["section"] == "s.121" and "communicated publicly or privately" in private["why"]
    assert "end-to-end encryption" in private["notes"][0]
    public = titles["Technology Notice: terrorism and CSEA content communicated publicly"]
    assert [p["section"] for p in public["prerequisites"]] == ["s.125(13)", "s.127", "s.125(12)"]
    assert not any(p["exists"] for p in public["prerequisites"])
    assert "Transparency notice" in titles  # Category 2B
    search = answer(tmp_path, capsys, user_to_user=False, search=True, features=[], category="none")
    search_titles = {p["title"] for p in search["notice_powers"]}
    assert "Technology Notice: terrorism and CSEA content communicated publicly" in search_titles
    assert "Technology Notice: CSEA content communicated privately" not in search_titles
    assert "Transparency notice" not in search_titles
    exempt = answer(tmp_path, capsys, exemption="internal_business")
    assert exempt["notice_powers"] == []
