"""The fixed moment every test runs at (tests/conftest.py's `clock`): 24 Nov 2026, 10:00 in
London."""

import datetime as dt
import zoneinfo

LONDON = zoneinfo.ZoneInfo("Europe/London")
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=LONDON)
TODAY = NOW.date()
