"""Cursor pagination: a page costs the same at row 100,000 as at row 1 (no OFFSET)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

NOT_OURS = {"cursor": ["Not a cursor this API gave out: follow the `next` link."]}


def is_digits(raw: str) -> bool:
    """0-9 only: str.isdigit() also says yes to "²", which int() refuses."""
    return raw.isascii() and raw.isdigit()


class Cursor(CursorPagination):
    page_size = 100
    max_page_size = 500
    page_size_query_param = "page_size"
    ordering = "id"

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not is_digits(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {"page_size": [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def decode_cursor(self, request: Request) -> Any:
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError(NOT_OURS) from None
        # Every list is ordered by id, so a position is an id; anything else is not ours.
        if cursor is not None and cursor.position is not None and not is_digits(cursor.position):
            raise exceptions.ValidationError(NOT_OURS)
        return cursor
