"""Django's British formats, with times on the 24-hour clock: a moment reads "17 Mar 2025 14:05"
in the admin's tables as it does everywhere else (obligations.dates.display_moment), not
"17 Mar 2025, 2:05 p.m.". Django's own en_GB module supplies everything not set here."""

TIME_FORMAT = "H:i"
DATETIME_FORMAT = "j M Y H:i"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
