"""The catalogue file: complete against the reference, valid, loaded idempotently."""

import copy
import json
import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from obligations.catalogue.models import Duty, Feature
from obligations.catalogue.selectors import loaded_catalogue
from obligations.register.models import Obligation
from tests.factories import applied_service

REFERENCE = Path(settings.BASE_DIR).parent / "shared" / "osa-reference.md"


def reference_codes() -> set[str]:
    """Duty codes in section 3 of the shared reference; 'A / B / C' rows name several."""
    text = REFERENCE.read_text(encoding="utf-8")
    section = text.split("## 3. Duty catalogue")[1].split("\n## ")[0]
    codes = set()
    for line in section.splitlines():
        match = re.match(r"\| ([A-Z0-9][A-Z0-9 /-]+?) \|", line)
        if not match or match.group(1) == "Code":
            continue
        first, *rest = [part.strip() for part in match.group(1).split("/")]
        codes.add(first)
        prefix = first.rsplit("-", 1)[0]
        codes.update(f"{prefix}-{part}" for part in rest)
    return codes


def test_every_reference_duty_is_in_the_catalogue(catalogue_file):
    if not REFERENCE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{REFERENCE} is missing; CI must check the catalogue against it")
        pytest.skip("the shared reference is not beside this checkout")
    codes = reference_codes()
    assert len(codes) >= 30, codes  # the parser found the table
    covered = {d["code"] for d in catalogue_file.duties} | {
        d["reference_code"] for d in catalogue_file.duties
    }
    assert codes - covered == set()


def test_every_entry_cites_a_source_and_flags_what_is_unverified(catalogue_file):
    for duty in catalogue_file.duties:
        assert duty["source_url"].startswith("https://"), duty["code"]
        assert re.match(r"^(s|ss)\.\d", duty["section"]), duty["code"]
        if not duty.get("verified", True):
            assert duty["unverified_note"], duty["code"]
        commenced = duty["commencement"]
        if duty["in_force_from"]:
            assert commenced["instrument"] and commenced["url"].startswith("https://"), duty["code"]
        else:
            assert commenced["note"], duty["code"]
    unverified = {d["code"] for d in catalogue_file.duties if not d.get("verified", True)}
    # Commencement known only from secondary sources, or resting on finding no instrument
    # (checked against legislation.gov.uk's text on 6 Dec 2026: fixtures/COMMENCEMENT.md).
    assert unverified == {
        "U2U-NCII-48H",
        "U2U-NCII-REPORT",
        "U2U-NCII-EXPEDITED-COMPLAINTS",
        "SEARCH-NCII-48H",
        "CSEA-NCA-REPORT",
        "CSEA-NCA-REPORT-SEARCH",
        "U2U-NEWS",
        "USER-ID-VERIFY",
        "TOS-DUTIES",
        "DECEASED-CHILD",
        # The search children's code's day is assumed from the user-to-user code.
        "SEARCH-CHILD-SAFETY",
        # Whether Ofcom's s.15(2) guidance (s.52(1)) is out decides Sch.3 para 6(2) or (3).
        "U2U-UE-ASSESS",
    }


def test_loading_is_idempotent(catalogue, capsys):
    assert Duty.objects.count() == len(catalogue.duties)
    call_command("load_catalogue")
    out = capsys.readouterr().out
    assert "add 0, change 0, retire 0" in out
    assert Duty.objects.count() == len(catalogue.duties)


def test_dry_run_reports_and_writes_nothing(db, capsys, catalogue_file):
    call_command("load_catalogue", "--dry-run")
    expected = f"would add {len(catalogue_file.duties)}, change 0, retire 0"
    assert expected in capsys.readouterr().out
    assert not Duty.objects.exists()


def _new_version(tmp_path, mutate):  # type: ignore[no-untyped-def]
    data = json.loads(Path(settings.CATALOGUE_PATH).read_text())
    data["version"] = "2027.1.0"
    mutate(data)
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(data))
    return path


def test_a_new_version_adds_changes_and_retires_and_reaches_the_register(
    catalogue, tmp_path, capsys
):
    service = applied_service()

    def mutate(data):  # type: ignore[no-untyped-def]
        new = copy.deepcopy(next(d for d in data["duties"] if d["code"] == "U2U-REPORTING"))
        new.update(code="U2U-NEW-DUTY", reference_code="U2U-NEW-DUTY", title="A new duty")
        data["duties"].append(new)
        next(d for d in data["duties"] if d["code"] == "U2U-FOE-PRIVACY")["title"] = "Renamed"
        data["duties"] = [d for d in data["duties"] if d["code"] != "TOS-RIGHT-TO-SUE"]

    path = _new_version(tmp_path, mutate)

    call_command("load_catalogue", str(path), "--dry-run")
    out = capsys.readouterr().out
    assert "would add 1, change 1, retire 1" in out
    assert "~ U2U-FOE-PRIVACY: title" in out and "- TOS-RIGHT-TO-SUE" in out

    call_command("load_catalogue", str(path))
    retired = Obligation.objects.get(service=service, duty__code="TOS-RIGHT-TO-SUE")
    assert not retired.applicable
    assert "retired from the catalogue (version 2027.1.0)" in retired.not_applicable_reason
    assert Obligation.objects.get(service=service, duty__code="U2U-NEW-DUTY").applicable
    assert Duty.objects.get(code="TOS-RIGHT-TO-SUE").retired_at is not None


def test_loading_needs_no_code_change_for_a_new_feature(catalogue, tmp_path):
    def mutate(data):  # type: ignore[no-untyped-def]
        data["features"].append({"code": "ai_chatbot", "label": "Generative AI chatbot"})
        data["duties"][0]["applies"] = {
            **data["duties"][0]["applies"],
            "features_any": ["ai_chatbot"],
        }

    call_command("load_catalogue", str(_new_version(tmp_path, mutate)))
    assert Feature.objects.filter(code="ai_chatbot").exists()
    assert Duty.objects.get(code=loaded_catalogue().duties[0]["code"])


def test_the_report_lists_each_duty_in_force_or_not_and_every_unverified_entry(capsys):
    """Reads the file alone: no database is touched (pytest-django would refuse)."""
    call_command("catalogue_report")
    out = capsys.readouterr().out
    data = json.loads(Path(settings.CATALOGUE_PATH).read_text(encoding="utf-8"))
    assert out.startswith(f"Catalogue {data['version']} (published 6 Dec 2026): 58 duties,")
    lines = {line.split()[0]: line for line in out.splitlines() if line[:1].isupper()}
    assert "In force since 10 Jan 2024 (SI 2023/1420 reg 2(c))." in lines["U2U-ILLEGAL-RA"]
    assert "Not known to be in force." in lines["U2U-NEWS"]
    assert lines["U2U-NEWS"].endswith("[unverified]")
    assert "Not yet in force: s.51(7)" in lines["FRAUD-ADS-C1"]
    unverified = out.split("Unverified, and why:\n")[1]
    assert "- duties: CSEA-NCA-REPORT: s.66(1)-(2) (user-to-user providers)" in unverified
    assert "- parameters: fees: Read in the primary text:" in unverified
    call_command("catalogue_report", "--json")
    report = json.loads(capsys.readouterr().out)
    news = next(d for d in report["duties"] if d["code"] == "U2U-NEWS")
    assert (news["in_force"], news["instrument"], news["verified"]) == (None, "", False)
    assert len(report["unverified"]) == out.count("\n- ")
