"""The API's JSON parser: DRF's, with nesting held to `inputs.MAX_JSON_DEPTH` (a body nested
50,000 deep was a 500). The body's size is Django's DATA_UPLOAD_MAX_MEMORY_SIZE, read before
any parser runs; `errors` answers it with a 413."""

from __future__ import annotations

from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from obligations.inputs import load_json


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: dict[str, Any] | None = None,
    ) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        try:
            return load_json(stream.read().decode(encoding))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError too
            raise ParseError(f"JSON parse error - {exc}") from None
