"""Reading the settings' environment variables.

Every value is checked as it is read, and every malformed one is collected, so that a
process with a bad environment stops at start-up with one line per variable naming it
(`EMAIL_PORT must be a whole number from 1 to 65535, not 'abc'`), not a traceback, and
a typo in one variable does not hide a second. The README's environment table lists every
name read here (tests/deploy/test_settings.py keeps the two in step).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Mapping

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


class ConfigurationError(SystemExit):
    """Start-up refused: printed as its lines, exit status 1, no traceback."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(f"Configuration error: {problem}" for problem in problems))


class Env:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def refuse(self, problem: str) -> None:
        self.problems.append(problem)

    def str(self, name: str, default: str = "", *, single_line: bool = True) -> str:
        value = self._raw(name)
        if value is None:
            return default
        if single_line and any(ord(c) < 32 or ord(c) == 127 for c in value):
            self.refuse(f"{name} must be one line without control characters")
            return default
        return value

    def bool(self, name: builtins.str, default: bool = False) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in TRUE:
            return True
        if value.lower() in FALSE:
            return False
        self.refuse(f"{name} must be true or false (1/0, yes/no, on/off), not {value!r}")
        return default

    def int(self, name: builtins.str, default: int, *, minimum: int, maximum: int) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or not minimum <= number <= maximum:
            self.refuse(f"{name} must be a whole number from {minimum} to {maximum}, not {value!r}")
            return default
        return number

    def float(self, name: builtins.str, default: float, *, minimum: float, maximum: float) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and minimum <= number <= maximum):
            self.refuse(f"{name} must be a number from {minimum:g} to {maximum:g}, not {value!r}")
            return default
        return number

    def choice(
        self, name: builtins.str, default: builtins.str, choices: tuple[builtins.str, ...]
    ) -> builtins.str:
        value = self._raw(name)
        if value is None:
            return default
        if value not in choices:
            self.refuse(f"{name} must be one of {', '.join(choices)}, not {value!r}")
            return default
        return value

    def list(self, name: builtins.str, default: builtins.str = "") -> builtins.list[builtins.str]:
        return [item.strip() for item in self.str(name, default).split(",") if item.strip()]

    def check(self) -> None:
        """Stop here if anything read was malformed (called at the end of the settings)."""
        if self.problems:
            raise ConfigurationError(self.problems)


def web_address(env: Env) -> str:
    """Where `bin/tracker web` listens: WEB_BIND, else every interface on PORT."""
    return env.str("WEB_BIND") or f"0.0.0.0:{env.int('PORT', 8000, minimum=1, maximum=65535)}"
