"""What the catalogue's schema refuses, in words, at each edge: the range of a recurrence (the
Act's cycles), a list naming one entry twice, a value too long to quote, a rule nested past
checking, a wrong type where null is allowed.

No database: `make mutation` runs these against every mutant of
obligations/catalogue/schema.py (issue 31); tests/catalogue/test_catalogue_loading.py has the
rest.
"""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from jsonschema import Draft202012Validator

from obligations.catalogue.schema import FORMATS, _found, problems

FILE = json.loads(Path(settings.CATALOGUE_PATH).read_text(encoding="utf-8"))


def refused(change: Any) -> list[str]:
    data = copy.deepcopy(FILE)
    change(data)
    return problems(data)


def test_the_catalogue_file_has_no_problem():
    assert problems(copy.deepcopy(FILE)) == []


@pytest.mark.parametrize(
    ("months", "problem"),
    [
        (0, "must be at least 1, not 0"),
        (121, "must be at most 120, not 121"),
    ],
)
def test_a_recurrence_is_from_1_to_120_months(months, problem):
    def change(data: dict[str, Any]) -> None:
        data["duties"][0]["deadline"]["recurrence"]["months"] = months

    assert refused(change) == [f"duties[0].deadline.recurrence.months: {problem}"]
    for edge in (1, 120):
        assert (
            refused(lambda d, m=edge: d["duties"][0]["deadline"]["recurrence"].update(months=m))
            == []
        )


def test_a_list_naming_one_entry_twice_is_refused_naming_it():
    def change(data: dict[str, Any]) -> None:
        data["features"][1]["implies"] = ["direct_messaging", "file_sharing", "file_sharing"]

    assert refused(change) == ['features[1].implies: lists "file_sharing" twice']


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (5, "must be a JSON object, not 5"),
        ("café", 'must be a JSON object, not "café"'),  # as written, not \\u00e9
        ("x" * 58, f'must be a JSON object, not "{"x" * 58}"'),  # 60 characters quoted: whole
        # 61: the first 57 (the quote and 56 letters) and "..."
        ("x" * 59, f'must be a JSON object, not "{"x" * 56}...'),
    ],
)
def test_a_wrong_value_is_quoted_as_written_and_cut_past_60_characters(value, problem):
    assert refused(lambda d: d["duties"][0].update(applies=value)) == [
        f"duties[0].applies: {problem}"
    ]


def test_a_date_that_may_be_null_says_so():
    assert refused(lambda d: d["duties"][0].update(in_force_from=5)) == [
        "duties[0].in_force_from: must be a string or null, not 5"
    ]


def test_a_charging_year_start_of_the_wrong_type_is_one_problem_not_two():
    assert refused(lambda d: d["parameters"]["fees"].update(charging_year_start=401)) == [
        "parameters.fees.charging_year_start: must be a string, not 401"
    ]


def test_a_worded_refusal_quotes_the_value_it_refuses():
    """Only the fees duties are due by the fees position: the schema's own words for a `not`,
    followed by the value."""
    [problem] = refused(lambda d: d["duties"][2]["deadline"].update(kind="fees"))
    assert problem.startswith("duties[2].deadline.kind: ")
    assert problem.endswith(', not "fees"')


def test_a_rule_nested_past_checking_is_one_problem():
    rule: dict[str, Any] = {"regulated": True}
    for _ in range(5000):
        rule = {"any": [rule]}
    assert refused(lambda d: d["duties"][0].update(applies=rule)) == [
        "catalogue: nested too deeply to check"
    ]


def worded(schema: dict[str, Any], value: Any) -> list[str]:
    """The words for `value` under a schema of the test's own: the ways a schema may word a
    refusal, whether or not today's catalogue schema uses them, so that a field added to it
    tomorrow reads as well as the ones it has."""
    checker = Draft202012Validator(schema, format_checker=FORMATS)
    return [message for error in checker.iter_errors(value) for _, message in _found(error)]


@pytest.mark.parametrize(
    ("schema", "value", "words"),
    [
        ({"type": "number"}, "x", 'must be a number, not "x"'),
        ({"const": "a"}, "b", 'must be "a", not "b"'),
        (
            {"type": "integer", "x-messages": {"type": "must be a count"}},
            "x",
            'must be a count, not "x"',
        ),
        (
            {"format": "date", "x-messages": {"format": "must be a day"}},
            "2026-13-01",
            'must be a day, not "2026-13-01"',
        ),
        (
            {"minimum": 1, "x-messages": {"minimum": "must be positive"}},
            0,
            "must be positive, not 0",
        ),
        (
            {"maximum": 9, "x-messages": {"maximum": "must be one digit"}},
            10,
            "must be one digit, not 10",
        ),
    ],
)
def test_every_way_a_schema_words_a_refused_value_quotes_the_value(schema, value, words):
    assert worded(schema, value) == [words]
