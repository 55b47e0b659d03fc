"""Loading a catalogue file: one schema checks all of it first, every problem is named at its
place in the file, a version only goes forward, and a load cannot quietly retire many duties.
A refused file writes nothing."""

import copy
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from jsonschema import Draft202012Validator

from obligations.assessments.models import AssessmentKind
from obligations.catalogue.commencement import effective_from
from obligations.catalogue.models import (
    CatalogueVersion,
    CodeMeasure,
    Duty,
    DutyScope,
    Feature,
    HarmKind,
)
from obligations.catalogue.rules import BASES, KINDS, CatalogueError, parse_catalogue
from obligations.catalogue.schema import schema
from obligations.notices.models import NoticeKind
from obligations.register.models import Event, Obligation
from tests.factories import applied_service

FILE = json.loads(Path(settings.CATALOGUE_PATH).read_text(encoding="utf-8"))
RULE_KEYS = (
    "any, categories_any, children_likely_to_access, features_all, features_any, "
    "features_none, fees, kinds_any, notice, regulated, users_over"
)


def catalogue_data() -> dict[str, Any]:
    return copy.deepcopy(FILE)


def new_version(
    tmp_path: Path,
    change: Callable[[dict[str, Any]], object],
    version: str = "2027.1.0",
    published: str = "2027-01-10",
) -> Path:
    data = catalogue_data()
    data.update(version=version, published=published)
    change(data)
    path = tmp_path / f"catalogue-{version}.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def load(path: Path | str, *args: str) -> str:
    out = io.StringIO()
    call_command("load_catalogue", str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(path: Path | str, *args: str) -> list[str]:
    """The problems the command prints, one a line, as it refuses the file."""
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was loaded"):
        call_command("load_catalogue", str(path), *args, stdout=io.StringIO(), stderr=err)
    return err.getvalue().splitlines()


def register_state() -> dict[str, Any]:
    """What a load could write: to compare before and after a refused one."""
    return {
        "versions": list(CatalogueVersion.objects.order_by("pk").values_list()),
        "duties": list(Duty.objects.order_by("pk").values_list()),
        "features": list(Feature.objects.order_by("pk").values_list()),
        "measures": list(CodeMeasure.objects.order_by("pk").values_list()),
        "harms": list(HarmKind.objects.order_by("pk").values_list()),
        "obligations": list(Obligation.objects.order_by("pk").values_list()),
        "events": Event.objects.count(),
    }


@pytest.fixture
def register(catalogue):  # type: ignore[no-untyped-def]
    """The catalogue loaded and applied to a service; the state before the test loads more."""
    applied_service()
    return register_state()


# --- The findings of issue 25, item 8 ----------------------------------------------


def test_a_wrong_type_is_named_at_its_path_and_nothing_is_written(register, tmp_path):
    path = new_version(tmp_path, lambda d: d["duties"][12].update(verified="yes"))
    assert refused(path) == ['duties[12].verified: must be true or false, not "yes"']
    assert register_state() == register


def test_values_longer_than_their_columns_are_refused_before_the_database(register, tmp_path):
    def change(data: dict[str, Any]) -> None:
        data["duties"][0]["code"] = "X" * 61
        data["duties"][1]["title"] = "T" * 201

    path = new_version(tmp_path, change, version="2027." + "1" * 40)
    assert refused(path) == [
        "version: is 45 characters long; the most is 40",
        "duties[0].code: is 61 characters long; the most is 60",
        "duties[1].title: is 201 characters long; the most is 200",
    ]
    assert register_state() == register


def test_unknown_fields_are_refused_each_by_name(register, tmp_path):
    def change(data: dict[str, Any]) -> None:
        data["colour"] = "red"
        data["duties"][3]["severity"] = "high"
        data["duties"][3]["applies"]["users_under"] = 5
        data["parameters"]["fees"]["vat_percent"] = "20"

    problems = refused(new_version(tmp_path, change))
    assert [line.split(" (known: ")[0] for line in problems] == [
        "duties[3].applies.users_under: unknown field",
        "duties[3].severity: unknown field",
        "parameters.fees.vat_percent: unknown field",
        "colour: unknown field",
    ]
    assert problems[0] == f"duties[3].applies.users_under: unknown field (known: {RULE_KEYS})"
    assert register_state() == register


def test_a_version_loaded_before_with_other_content_is_refused(register, tmp_path):
    path = new_version(
        tmp_path,
        lambda d: d["duties"][0].update(title="Renamed"),
        version=FILE["version"],
        published=FILE["published"],
    )
    loaded = CatalogueVersion.objects.get().sha256
    this = hashlib.sha256(path.read_bytes()).hexdigest()
    assert refused(path) == [
        f"version: {FILE['version']} was loaded on 24 Nov 2026 with other content (sha256 "
        f"{loaded[:12]}..., this file {this[:12]}...): give the changed catalogue a new version"
    ]
    assert register_state() == register


def test_an_older_version_is_refused(register, tmp_path):
    path = new_version(tmp_path, lambda d: None, version="2026.11.3", published="2026-11-20")
    assert refused(path) == [
        f"version: 2026.11.3 does not come after the loaded version {FILE['version']}: a "
        "catalogue only goes forward",
        f"published: 2026-11-20 is before {FILE['published']}, when the loaded version "
        f"{FILE['version']} was published: a catalogue only goes forward",
    ]
    assert register_state() == register


def test_going_back_to_a_version_loaded_before_is_refused(register, tmp_path):
    # Versions are ordered number by number: 2026.12.10 comes after 2026.12.1.
    load(new_version(tmp_path, lambda d: d["duties"][0].update(title="Renamed"), "2026.12.10"))
    after = register_state()
    assert refused(settings.CATALOGUE_PATH) == [
        f"version: {FILE['version']} is older than the loaded version 2026.12.10: a catalogue "
        "only goes forward"
    ]
    assert register_state() == after


def test_reloading_the_same_file_changes_nothing(register):
    assert "add 0, change 0, retire 0" in load(settings.CATALOGUE_PATH)
    assert register_state() == register


def test_a_catalogue_without_duties_is_refused_and_retires_nothing(register, tmp_path):
    path = new_version(tmp_path, lambda d: d.update(duties=[], measures=[]))
    assert refused(path) == ["duties: must not be empty"]
    assert register_state() == register


# Duties no Codes measure serves, so that the file stays consistent without them.
SIX = [
    "CAA",
    "TOS-RIGHT-TO-SUE",
    "TR-PUBLISH",
    "TR-SUBMIT",
    "U2U-DEMOCRATIC",
    "U2U-NEWS",
]


def without(codes: list[str]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["duties"] = [d for d in data["duties"] if d["code"] not in codes]

    return change


def test_retiring_more_than_a_tenth_of_the_duties_needs_saying_so(register, tmp_path):
    path = new_version(tmp_path, without(SIX))
    problem = [
        f"duties: loading would retire 6 of the {len(FILE['duties'])} current duties (more "
        "than 10%): "
        f"{', '.join(SIX)}; if that is meant, load with --allow-retire"
    ]
    assert refused(path) == problem
    assert refused(path, "--dry-run") == problem
    assert register_state() == register

    assert "did add 0, change 0, retire 6." in load(path, "--allow-retire")
    retired = Duty.objects.filter(retired_at__isnull=False)
    assert sorted(retired.values_list("code", flat=True)) == SIX


def test_retiring_a_tenth_or_less_needs_no_flag(register, tmp_path):
    assert "retire 5." in load(new_version(tmp_path, without(SIX[:5])))


# --- One schema, every problem at its place ---------------------------------------------


def test_every_problem_is_reported_at_once_in_the_order_of_the_file(db, tmp_path):
    def change(data: dict[str, Any]) -> None:
        data["published"] = "2026-02-30"
        data["features"][1]["implies"] = ["telepathy"]
        data["categories"][0]["supersedes"] = ["3C"]
        data["duties"][0]["deadline"]["recurrence"]["months"] = 12.5
        data["duties"][2]["applies"] = {"notice": "information", "regulated": True}
        data["duties"][4].pop("summary")
        data["duties"][9]["code"] = data["duties"][8]["code"]
        data["measures"][0]["duties"] = ["U2U-TELEPATHY"]
        data["measures"][1]["recommended_for"] = {"risk": {"harms": "all", "at_least": "dire"}}
        data["parameters"]["penalty"]["fixed_gbp"] = 18_000_000
        data["parameters"]["assessment"]["matrix"]["high"].pop("low")

    assert refused(new_version(tmp_path, change)) == [
        "published: must be a date written YYYY-MM-DD, from 1 Jan 1990 to 31 Dec 2100, "
        'not "2026-02-30"',
        'features[1].implies[0]: must name a feature in features, not "telepathy"',
        'categories[0].supersedes[0]: must name a category in categories, not "3C"',
        "duties[0].deadline.recurrence.months: must be a whole number, not 12.5",
        "duties[2].applies: a notice rule stands alone: an Ofcom notice creates the duty, "
        "never a profile",
        "duties[4].summary: missing",
        'duties[9].code: "U2U-CHILD-HEAA" appears twice (also entry [8])',
        "parameters.penalty.fixed_gbp: must be a string, not 18000000",
        "parameters.assessment.matrix.high.low: the matrix needs a level for every impact",
        'measures[0].duties[0]: must name a duty in duties, not "U2U-TELEPATHY"',
        'measures[1].recommended_for.risk.harms: must be one of "any", "children_pc", not "all"',
        "measures[1].recommended_for.risk.at_least: must name a level in "
        'parameters.assessment.levels, not "dire"',
    ]


def no_unverified_note(data: dict[str, Any]) -> None:
    data["duties"][0].update(verified=False, unverified_note="")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d["duties"][0]["applies"].update(colour="red"),
            f"duties[0].applies.colour: unknown field (known: {RULE_KEYS})",
        ),
        (
            lambda d: d["duties"][0]["applies"].update(any=[{"features_any": ["teleport"]}]),
            "duties[0].applies.any[0].features_any[0]: must name a feature in features, not "
            '"teleport"',
        ),
        (
            lambda d: d["duties"][0]["applies"].update(any=[{"users_over": "many"}]),
            'duties[0].applies.any[0].users_over: must be a whole number, not "many"',
        ),
        (
            lambda d: d["duties"][0]["applies"].update(kinds_any="search"),
            'duties[0].applies.kinds_any: must be a list, not "search"',
        ),
        (lambda d: d["duties"][0].update(applies={}), "duties[0].applies: must not be empty"),
        (
            lambda d: d["duties"][1]["deadline"].update(kind="someday"),
            'duties[1].deadline.kind: must be one of "fixed", "continuous", "per_notice", '
            '"per_report", "on_change", "fees", not "someday"',
        ),
        (
            lambda d: d["duties"][0]["deadline"].update(kind="continuous"),
            'duties[0].deadline.kind: only a fixed deadline has after_start, not "continuous"',
        ),
        (
            lambda d: [d["duties"][0]["deadline"].pop(key) for key in ("date", "after_start")],
            "duties[0].deadline.date: a fixed deadline needs its date, or after_start",
        ),
        (
            lambda d: d["duties"][0].update(in_force_from="1989-12-31"),
            "duties[0].in_force_from: must be a date written YYYY-MM-DD, from 1 Jan 1990 to "
            '31 Dec 2100, not "1989-12-31"',
        ),
        (
            lambda d: d["duties"][0].update(in_force_from="20241216"),
            "duties[0].in_force_from: must be a date written YYYY-MM-DD, from 1 Jan 1990 to "
            '31 Dec 2100, not "20241216"',
        ),
        (
            lambda d: d["duties"][0].update(scope="provider"),
            'duties[0].scope: only a duty with a "fees" rule is provider-wide: must be '
            '"service", not "provider"',
        ),
        (
            lambda d: d["duties"][0].update(source_url="legislation.gov.uk"),
            "duties[0].source_url: must be a web address, e.g. "
            'https://www.legislation.gov.uk/..., not "legislation.gov.uk"',
        ),
        (
            no_unverified_note,
            'duties[0].unverified_note: an entry with "verified": false must say what is '
            "unverified",
        ),
        (
            lambda d: d["measures"][0].update(recommended_for={"large": "yes"}),
            'measures[0].recommended_for.large: must be true or false, not "yes"',
        ),
        (
            lambda d: d["measures"][0].update(recommended_for={"size": "large"}),
            "measures[0].recommended_for.size: unknown field (known: any, categories_any, "
            "children_likely, features_any, features_none, large, multi_risk, risk, users_over)",
        ),
        (
            lambda d: d["harm_kinds"][0].update(assessments=["illegal_u3u"]),
            'harm_kinds[0].assessments[0]: must be one of "illegal_u2u", "illegal_search", '
            '"children_u2u", "children_search", not "illegal_u3u"',
        ),
        (
            lambda d: d["parameters"]["fees"].update(threshold_gbp="1e27"),
            "parameters.fees.threshold_gbp: must be a decimal number in a string, e.g. "
            '"18000000", not "1e27"',
        ),
        (
            lambda d: d["parameters"]["fees"].update(charging_year_start="02-29"),
            "parameters.fees.charging_year_start: must be a day of the year written MM-DD, "
            'e.g. "04-01", not "02-29"',
        ),
        # Without harm kinds, the measures naming them are not refused one by one as well.
        (lambda d: d.pop("harm_kinds"), "harm_kinds: missing"),
    ],
)
def test_a_malformed_entry_is_named_at_its_path(change, problem):
    data = catalogue_data()
    change(data)
    with pytest.raises(CatalogueError) as refusal:
        parse_catalogue(data, sha256="x")
    assert refusal.value.problems == [problem]


def test_the_command_prints_one_problem_a_line_and_no_traceback(tmp_path):
    def change(data: dict[str, Any]) -> None:
        data["duties"][12]["verified"] = "yes"
        data["duties"][1]["title"] = "T" * 201

    path = new_version(tmp_path, change)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "manage.py", "load_catalogue", str(path)],
        cwd=settings.BASE_DIR,
        env={**env, "TRACKER_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "duties[1].title: is 201 characters long; the most is 200",
        'duties[12].verified: must be true or false, not "yes"',
        f"CommandError: {path}: 2 problems; nothing was loaded.",
    ]


def test_a_file_that_is_not_json_is_refused_in_one_line(db, tmp_path):
    path = tmp_path / "catalogue.json"
    path.write_bytes(b'{"version": "2027.1.0",\n "published": \xff}')
    [problem] = refused(path)
    assert problem.startswith(f"{path}: not valid JSON (")


# --- The schema agrees with the code that reads what it lets through --------------------

SCHEMA = schema()
DEFS = SCHEMA["$defs"]


def test_the_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_lengths_are_the_columns_lengths():
    """A string the schema lets through always fits its column (SQLite would store a longer
    one, PostgreSQL would refuse it mid-load)."""
    modelled = [SCHEMA, *(d for d in DEFS.values() if "x-model" in d)]
    assert {d["x-model"] for d in modelled} == {
        "CatalogueVersion",
        "Feature",
        "RegisterCategory",
        "Exemption",
        "Duty",
        "HarmKind",
        "RiskFactor",
        "CodeMeasure",
    }
    for definition in modelled:
        model = apps.get_model("obligations", definition["x-model"])
        columns = {f.name: f for f in model._meta.concrete_fields}
        for name, prop in definition["properties"].items():
            column = columns.get(name)
            max_length = getattr(column, "max_length", None)
            assert prop.get("maxLength") == max_length, (model.__name__, name)
            if column is not None and column.get_internal_type() == "SlugField":
                assert prop["pattern"] == "^[-a-zA-Z0-9_]+$", (model.__name__, name)


def test_the_schema_vocabularies_are_the_codes_vocabularies():
    rule = DEFS["rule"]["properties"]
    duty = DEFS["duty"]["properties"]
    assert rule["kinds_any"]["items"]["enum"] == list(KINDS)
    assert set(rule["notice"]["enum"]) == {*NoticeKind.values, "technology"}
    assert DEFS["basis"]["enum"] == list(BASES)
    assert duty["scope"]["enum"] == DutyScope.values
    assert DEFS["assessment_kind"]["enum"] == AssessmentKind.values
    kinds = DEFS["parameters"]["properties"]["assessment"]["properties"]["kinds"]
    assert kinds["required"] == AssessmentKind.values


def test_after_migrate_loading_the_same_file_fills_what_a_migration_left_empty(catalogue):
    """Migration 0022 added Duty.effective_from empty: every duty read as not in force until the
    catalogue was loaded again. The same file loaded again fills it, and the README's deploy
    steps run load_catalogue after migrate."""
    Duty.objects.update(effective_from=None)  # as 0022 leaves an existing installation
    call_command("load_catalogue", stdout=io.StringIO())
    safety = Duty.objects.get(code="U2U-ILLEGAL-SAFETY")
    assert str(safety.effective_from) == "2025-03-17"
    stored = dict(Duty.objects.values_list("code", "effective_from"))
    assert stored == {d["code"]: effective_from(d) for d in FILE["duties"]}
    readme = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    steps = readme[readme.index("## Running with PostgreSQL and Redis") :]
    migrate = steps.index("python manage.py migrate")
    assert migrate < steps.index("python manage.py load_catalogue", migrate)
    assert "Migration 0022 adds\n`Duty.effective_from`" in steps
