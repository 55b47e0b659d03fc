"""Links to many objects of one kind, reversed once: a dashboard page links a few hundred
objects, and a digest e-mail thousands, where each reverse() costs a pattern match."""

from __future__ import annotations

import functools

from django.urls import get_script_prefix, reverse

# Reversed in place of the id, then replaced by each id; a number, so that patterns taking
# an integer accept it.
_PLACEHOLDER = "987654321987654321"


def object_url(name: str, pk: object) -> str:
    """reverse(name, args=[pk])."""
    before, after = _around_id(get_script_prefix(), name)
    return f"{before}{pk}{after}"


def page_url(name: str) -> str:
    """reverse(name), for a page that takes no id."""
    return _page(get_script_prefix(), name)


# Keyed by the script prefix too: the paths only change with it.
@functools.lru_cache(maxsize=64)
def _around_id(prefix: str, name: str) -> tuple[str, str]:
    before, _, after = reverse(name, args=[_PLACEHOLDER]).partition(_PLACEHOLDER)
    return before, after


@functools.lru_cache(maxsize=64)
def _page(prefix: str, name: str) -> str:
    return reverse(name)
