"""Stored values as a person reads them, for the field history, which shows raw values
(django-simple-history hands its template their text): a dash for nothing, yes and no, dates
as 17 Mar 2025."""

from __future__ import annotations

import datetime as dt
import re

from django import template
from simple_history.models import DeletedObject

from obligations.dates import display, display_moment

register = template.Library()

DASH = "\u2013"  # an en dash
# How simple-history shows a relation that was empty: a deleted object with no key.
NO_OBJECT = re.compile(r"Deleted .+ \(pk=None\)")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?")


@register.filter
def in_words(value: object) -> object:
    if isinstance(value, DeletedObject) and value.pk is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return display_moment(value)
    if isinstance(value, dt.date):
        return display(value)
    if value is None:
        return DASH
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text in ("", "None") or NO_OBJECT.fullmatch(text):
        return DASH
    if text in ("True", "False"):
        return "yes" if text == "True" else "no"
    if ISO_DATE.fullmatch(text):
        return display(dt.date.fromisoformat(text))
    if ISO_MOMENT.fullmatch(text):
        return display_moment(dt.datetime.fromisoformat(text))
    return value
