"""Sums of money, one-line names and JSON people send: the one rule for each, beside dates.py.

Models, forms, serializers, the API's parser and the profile parser (the API and
`applicable_duties`) all run these, so that the admin, the API and the command refuse the same
things with the same words.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

# --- Money ----------------------------------------------------------------
# Pounds to the penny, never negative, never more digits than the columns hold. "1e27" once
# passed the profile check and overflowed the penalty arithmetic (a 500); NaN and Infinity
# are not sums at all.

MAX_DIGITS = 16
DECIMAL_PLACES = 2
LARGEST = Decimal(10) ** (MAX_DIGITS - DECIMAL_PLACES) - Decimal(10) ** -DECIMAL_PLACES
AMOUNT_RULE = f"an amount in pounds from 0 to {LARGEST:,}, to the penny"


def is_amount(value: Decimal) -> bool:
    return (
        value.is_finite()
        and 0 <= value <= LARGEST
        and int(value.as_tuple().exponent) >= -DECIMAL_PLACES
    )


def parse_amount(text: Any) -> Decimal | None:
    """A decimal string (as JSON carries money) that is an amount, or None."""
    if not isinstance(text, str):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if is_amount(value) else None


def validate_amount(value: Decimal | None) -> None:
    """A field validator (models and forms run it)."""
    if value is not None and not is_amount(value):
        raise ValidationError(f"Enter {AMOUNT_RULE}.", code="invalid_amount")


# --- One-line names ----------------------------------------------------------
# A service name with a line break once broke its calendar feed (a 500); in a CSV, an e-mail
# subject or a log line it splits what reads as one record. C0 and C1 controls (tab, CR, LF,
# NUL...) and the Unicode line and paragraph separators.

CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def validate_single_line(value: str) -> None:
    """A field validator for names, titles and references (models, forms, serializers)."""
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError(
            "Enter one line: no line breaks, tabs or other control characters.",
            code="control_characters",
        )


def one_line(value: str) -> str:
    """Stored text made fit for a one-line place (a calendar's name, an event's summary),
    whatever was saved before the validator existed."""
    return CONTROL_CHARACTERS.sub(" ", value)


# --- JSON ------------------------------------------------------------------
# A body nested 50,000 deep once exhausted Python's recursion limit (a 500). No profile or
# request needs more than a few levels.

MAX_JSON_DEPTH = 32


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def _deeper_than(data: Any, limit: int) -> bool:
    stack = [(data, 1)]
    while stack:  # not recursive: the point is not to exhaust the stack
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return False


def load_json(text: str | bytes) -> Any:
    """`json.loads`, refusing (ValueError) nesting deeper than MAX_JSON_DEPTH and the
    NaN and Infinity that Python's parser would otherwise take."""
    too_deep = ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise too_deep from None
    if _deeper_than(data, MAX_JSON_DEPTH):
        raise too_deep
    return data


def amount_field(verbose_name: str | None = None, **options: Any) -> models.DecimalField:
    """A sum in pounds: columns as wide as inputs.py's rule, and the rule as the validator."""
    return models.DecimalField(
        verbose_name,
        max_digits=MAX_DIGITS,
        decimal_places=DECIMAL_PLACES,
        validators=[validate_amount],
        **options,
    )
