"""The catalogue file's schema, and every problem with a file in words, each at its place.

fixtures/osa-catalogue.schema.json (JSON Schema, Draft 2020-12) is the one definition of what a
catalogue file may hold: field types and lengths, the rule language, the deadlines, and which
codes may name which entries. The whole file is checked before anything is written and every
problem is reported at once, e.g. `duties[12].verified: must be true or false, not "yes"`.

The schema's own keys (its description lists them) let it check what plain JSON Schema cannot:
`x-codes-from` makes a code that names another entry (a measure's duties, a feature's implies)
one of the codes the same file declares, and `x-unique` refuses two entries with one code.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from obligations.dates import RANGE_TEXT, is_plausible


@functools.cache
def schema() -> dict[str, Any]:
    """The schema as the file states it (its vocabularies not yet filled in)."""
    path = settings.BASE_DIR / "fixtures" / "osa-catalogue.schema.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


FORMATS = FormatChecker(formats=())


FORMAT_WORDS = {
    "date": f"a date written YYYY-MM-DD, from {RANGE_TEXT}",
    "uri": "a web address, e.g. https://www.legislation.gov.uk/...",
    "month-day": 'a day of the year written MM-DD, e.g. "04-01"',
}


@FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    # fromisoformat alone also takes 20250316 and week dates; the file says YYYY-MM-DD.
    if not isinstance(value, str):
        return True
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and is_plausible(
        dt.date.fromisoformat(value)
    )


@FORMATS.checks("uri", raises=DjangoValidationError)
def _is_url(value: object) -> bool:
    # The same check as the models' URLField, so what passes here is stored as it is.
    if isinstance(value, str):
        URLValidator()(value)
    return True


@FORMATS.checks("month-day", raises=ValueError)
def _is_month_day(value: object) -> bool:
    # A non-leap year: a charging year starting on 29 February would not exist most years.
    if not isinstance(value, str):
        return True
    return bool(re.fullmatch(r"\d{2}-\d{2}", value)) and bool(
        dt.date.fromisoformat(f"2001-{value}")
    )


def _unique(
    validator: Any, key: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """`x-unique`: no two entries of the list share a value of `key`."""
    if not isinstance(instance, list):
        return
    first: dict[str, int] = {}
    for index, entry in enumerate(instance):
        value = entry.get(key) if isinstance(entry, dict) else None
        if not isinstance(value, str):
            continue
        if value in first:
            yield ValidationError(
                f"{_shown(value)} appears twice (also entry [{first[value]}])", path=[index, key]
            )
        first.setdefault(value, index)


# A float such as 12.0 is not a whole number here: date arithmetic on it fails later.
_Validator = validators.extend(
    Draft202012Validator,
    validators={"x-unique": _unique},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def _declared(data: Any, pointer: str) -> list[str] | None:
    """The codes the file declares at `pointer` (a list of entries or of codes), skipping any
    malformed entry; None when there is no list there. The schema reports either in its place."""
    node = data
    for part in pointer.strip("/").split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, list):
        return None
    codes = (item.get("code") if isinstance(item, dict) else item for item in node)
    return sorted({code for code in codes if isinstance(code, str)})


def _filled(node: Any, data: Any) -> Any:
    """The schema with its vocabularies filled in from the file being checked. Where the file
    lacks a vocabulary, the codes naming it go unchecked: its absence is the one problem."""
    if isinstance(node, list):
        return [_filled(item, data) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _filled(value, data) for key, value in node.items()}
    for key, keyword in (("x-codes-from", "enum"), ("x-required-from", "required")):
        codes = _declared(data, node[key]) if key in node else None
        if codes is not None:
            result[keyword] = codes
    return result


def problems(data: Any) -> list[str]:
    """Every way `data` is not a catalogue, one line each, in the order of the file."""
    checker = _Validator(_filled(schema(), data), format_checker=FORMATS)
    try:
        found = [line for error in checker.iter_errors(data) for line in _found(error)]
    except RecursionError:
        return ["catalogue: nested too deeply to check"]
    found.sort(key=lambda line: _place(data, line[0]))
    return list(dict.fromkeys(f"{_where(path)}: {message}" for path, message in found))


def _place(data: Any, path: Sequence[Any]) -> list[int]:
    """Where in the file a path leads: each key by its position in its object; a missing
    field after those present."""
    place, node = [], data
    for part in path:
        if isinstance(node, dict):
            keys = list(node)
            place.append(keys.index(part) if part in node else len(keys))
            node = node.get(part)
        else:
            place.append(part)
            node = node[part]
    return place


TYPE_WORDS = {
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "string": "a string",
    "array": "a list",
    "object": "a JSON object",
    "null": "null",
}


# Keywords that refuse a value: their message ends with the value refused.
VALUE_KEYWORDS = {"type", "enum", "const", "pattern", "format", "not", "minimum", "maximum"}


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "catalogue"


def _found(error: ValidationError) -> Iterator[tuple[list[Any], str]]:
    """The error's problems in words, each with the path of the field it is about."""
    keyword, expected, value = error.validator, error.validator_value, error.instance
    path = list(error.absolute_path)
    own = error.schema if isinstance(error.schema, dict) else {}
    worded = own.get("x-messages", {}).get(keyword)
    if keyword == "required":
        for name in expected:
            if isinstance(value, dict) and name not in value:
                yield [*path, name], worded or "missing"
        return
    if keyword == "additionalProperties":
        known = sorted(own.get("properties", {}))
        for name in value:
            if name not in known:
                yield [*path, name], f"unknown field (known: {', '.join(known)})"
        return
    message = worded or _generic(keyword, expected, value, error)
    if worded and keyword in VALUE_KEYWORDS:
        message += f", not {_shown(value)}"
    if "propertyNames" in error.relative_schema_path:
        path, message = [*path, value], f"the key {message}"
    yield path, message


def _generic(keyword: Any, expected: Any, value: Any, error: ValidationError) -> str:
    shown = _shown(value)
    if keyword == "type":
        wanted = [expected] if isinstance(expected, str) else expected
        return f"must be {' or '.join(TYPE_WORDS[t] for t in wanted)}, not {shown}"
    if keyword == "enum":
        return f"must be one of {', '.join(_shown(v) for v in expected)}, not {shown}"
    if keyword == "const":
        return f"must be {_shown(expected)}, not {shown}"
    if keyword == "format":
        return f"must be {FORMAT_WORDS[expected]}, not {shown}"
    if keyword == "maxLength":
        return f"is {len(value)} characters long; the most is {expected}"
    if keyword in ("minLength", "minItems", "minProperties") and expected == 1:
        return "must not be empty"
    if keyword == "minimum":
        return f"must be at least {expected}, not {shown}"
    if keyword == "maximum":
        return f"must be at most {expected}, not {shown}"
    if keyword == "uniqueItems":
        repeated = next(v for i, v in enumerate(value) if v in value[:i])
        return f"lists {_shown(repeated)} twice"
    return str(error.message)
