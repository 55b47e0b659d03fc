"""The dashboard's pictures, drawn on the server as inline SVG, and the links behind its figures.

Nothing here counts anything: every number comes from `queries.summary`. This module only
turns those numbers into shapes, tables and links. Each SVG is an image to assistive
technology (role="img" with a <title> and a <desc> saying what it shows in words), every
label goes through `format_html`, and colour is never the only signal: each state also has a
pattern and a symbol, and each bar its value written out. The colours are Okabe and Ito's
colour-blind-safe palette.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from obligations.dashboard.queries import Filters
from obligations.dates import display
from obligations.links import object_url, page_url
from obligations.register.states import CycleStatus


@dataclass(frozen=True)
class Look:
    """How one state is shown: in words, as a symbol, as a colour and as a pattern."""

    label: str
    symbol: str
    colour: str  # the fill of chart shapes (white marks are drawn on it)
    tint: str  # the background of table cells, light enough for black text
    pattern: str  # "solid", "stripes", "dots" or "cross"


# The dashboard's four states, in the order the bars stack them (queries.buckets' keys).
BUCKETS: dict[str, Look] = {
    "met": Look("Met", "✓", "#009E73", "#b8e6d6", "solid"),
    "in_progress": Look("In progress", "◐", "#0072B2", "#bcdcf2", "stripes"),
    "not_started": Look("Not started", "○", "#8C8C8C", "#ececec", "dots"),
    "overdue": Look("Overdue", "!", "#D55E00", "#f6c3a3", "cross"),
}
# A heatmap cell holds a cycle's own status, or "overdue" (queries._heatmap); the working
# statuses share in progress's colour and keep a symbol of their own.
CELLS: dict[str, Look] = {
    CycleStatus.MET: BUCKETS["met"],
    "overdue": BUCKETS["overdue"],
    CycleStatus.IN_PROGRESS: BUCKETS["in_progress"],
    CycleStatus.READY_FOR_REVIEW: Look(
        CycleStatus.READY_FOR_REVIEW.label, "◑", "#0072B2", "#bcdcf2", "stripes"
    ),
    CycleStatus.SENT_BACK: Look(CycleStatus.SENT_BACK.label, "↺", "#0072B2", "#bcdcf2", "stripes"),
    CycleStatus.NOT_STARTED: BUCKETS["not_started"],
}
# A duty that does not apply to the service has no cell state.
NO_CELL = Look("Does not apply", "·", "#ffffff", "#ffffff", "solid")

# The admin obligations list's parameter for each dashboard filter.
ADMIN_FILTERS = {
    "organisation": "provider__organisation__id__exact",
    "provider": "provider__id__exact",
    "service": "service__id__exact",
    "owner": "owner__id__exact",
}


# --- Links -------------------------------------------------------------------


def admin_link(**params: object) -> str:
    """The admin obligations list filtered by `params` (None left out), in a stable order."""
    query = urlencode(sorted((k, str(v)) for k, v in params.items() if v is not None))
    return f"{page_url('admin:obligations_obligation_changelist')}?{query}"


def filter_params(filters: Filters, **overrides: object) -> dict[str, object]:
    """The admin list parameters that narrow it as `filters` narrow the dashboard (as_of has
    no admin equivalent: the list always shows today's register)."""
    params: dict[str, object] = {
        param: getattr(filters, name) for name, param in ADMIN_FILTERS.items()
    }
    params.update(overrides)
    return params


# The summary counts an obligation as applicable while it applies and its cycle has not been
# closed as not applicable; the admin list says the same with its status filter.
LIVE_STATUSES = ",".join(s for s in CycleStatus.values if s != CycleStatus.NOT_APPLICABLE)


def state_links(filters: Filters, **overrides: object) -> dict[str, str]:
    """A link per state, and one for all applicable, to exactly what each figure counts."""
    base = filter_params(filters, applicable__exact=1, **overrides)
    links = {state: admin_link(**base, state=state) for state in BUCKETS}
    links["applicable"] = admin_link(**base, status__in=LIVE_STATUSES)
    return links


def figures(row: Mapping[str, Any], links: Mapping[str, str]) -> list[dict[str, Any]]:
    """The four states of a totals row as (look, count, link), in the bars' order."""
    return [
        {"key": key, "look": look, "count": row[key], "href": links[key]}
        for key, look in BUCKETS.items()
    ]


# --- Shared SVG parts ----------------------------------------------------------


def _pattern(pid: str, look: Look) -> SafeString:
    """A fill for `look`: its colour with white marks, so that states differ without colour."""
    marks = {
        "solid": "",
        "stripes": '<path d="M0 0V8" stroke="#fff" stroke-width="2.5"/>',
        "dots": '<circle cx="4" cy="4" r="1.6" fill="#fff"/>',
        "cross": '<path d="M0 0L8 8M8 0L0 8" stroke="#fff" stroke-width="1.6"/>',
    }[look.pattern]
    rotate = ' patternTransform="rotate(45)"' if look.pattern == "stripes" else ""
    return format_html(
        '<pattern id="{}" width="8" height="8" patternUnits="userSpaceOnUse"{}>'
        '<rect width="8" height="8" fill="{}"/>{}</pattern>',
        pid,
        SafeString(rotate),
        look.colour,
        SafeString(marks),
    )


def _defs(prefix: str, looks: Mapping[str, Look]) -> SafeString:
    # Ids carry the chart's prefix: every chart is self-contained and ids stay unique on
    # the page.
    return format_html(
        "<defs>{}</defs>",
        format_html_join(
            "", "{}", ((_pattern(f"{prefix}-{k}", look),) for k, look in looks.items())
        ),
    )


def _svg(
    *, width: float, height: float, title: str, desc: str, body: SafeString, css: str
) -> SafeString:
    return format_html(
        '<svg class="{}" viewBox="0 0 {} {}" role="img" xmlns="http://www.w3.org/2000/svg">'
        "<title>{}</title><desc>{}</desc>{}</svg>",
        css,
        width,
        height,
        title,
        desc,
        body,
    )


def swatch(key: str) -> SafeString:
    """A legend's sample of a state's fill (decorative: the legend's words say the same)."""
    look = BUCKETS[key]
    return format_html(
        '<svg class="swatch" viewBox="0 0 16 16" aria-hidden="true" focusable="false">{}'
        '<rect width="16" height="16" fill="url(#legend-{})" stroke="#000"/></svg>',
        _defs("legend", {key: look}),
        key,
    )


# --- Compliance per service: a stacked bar each ----------------------------------

BAR_WIDTH = 400
BAR_HEIGHT = 26


def stacked_bar(row: Mapping[str, Any]) -> SafeString:
    """One service's obligations as a bar split by state, each part labelled by symbol and
    count where it is wide enough (the table beside it always gives every count)."""
    prefix = f"bar-{row['service_id']}"
    whole = row["applicable"]
    parts = []
    x = 0.0
    for key, look in BUCKETS.items():
        count = row[key]
        if not count or not whole:
            continue
        width = round(BAR_WIDTH * count / whole, 1)
        label = f"{look.symbol} {count}" if width >= 40 else look.symbol if width >= 14 else ""
        parts.append(
            format_html(
                '<rect x="{}" y="1" width="{}" height="{}" fill="url(#{}-{})" '
                'stroke="#000" stroke-width="1"/>'
                '<text x="{}" y="{}" text-anchor="middle" class="bar-label">{}</text>',
                x,
                width,
                BAR_HEIGHT - 2,
                prefix,
                key,
                round(x + width / 2, 1),
                BAR_HEIGHT // 2 + 5,
                label,
            )
        )
        x = round(x + width, 1)
    # The outline is the whole register of the service: a part the four states do not
    # cover shows as a gap rather than being stretched away.
    outline = format_html(
        '<rect x="0.5" y="1" width="{}" height="{}" fill="#fff" stroke="#000"/>',
        BAR_WIDTH - 1,
        BAR_HEIGHT - 2,
    )
    desc = "; ".join(f"{look.label}: {row[key]}" for key, look in BUCKETS.items())
    return _svg(
        width=BAR_WIDTH,
        height=BAR_HEIGHT,
        title=f"{row['name']}: obligations by state",
        desc=f"{desc}; of {whole} applicable obligations.",
        body=format_html(
            "{}{}{}",
            _defs(prefix, BUCKETS),
            outline,
            format_html_join("", "{}", ((p,) for p in parts)),
        ),
        css="chart bar",
    )


# --- Deadlines in the next 90 days: a timeline -----------------------------------

TIMELINE_WIDTH = 600
MARGIN = 30
STEP = 14  # vertical distance between deadlines on the same day


def timeline(rows: Sequence[Mapping[str, Any]], day: dt.date, days: int) -> SafeString:
    """A dot per deadline along a `days`-long axis from `day`; deadlines on one day stack."""
    span = TIMELINE_WIDTH - 2 * MARGIN
    stacks: dict[dt.date, int] = {}
    for row in rows:
        stacks[row["r_due"]] = stacks.get(row["r_due"], 0) + 1
    axis = 24 + STEP * max(stacks.values(), default=1)
    height = axis + 42
    seen: dict[dt.date, int] = {}
    dots = []
    for row in rows:
        due = row["r_due"]
        level = seen.get(due, 0)
        seen[due] = level + 1
        where = row["service__name"] or row["provider__name"]
        dots.append(
            format_html(
                '<a href="{}"><circle cx="{}" cy="{}" r="5.5" fill="#0072B2" '
                'stroke="#000"><title>{} · {} · due {}</title></circle></a>',
                object_url("admin:obligations_obligation_change", row["id"]),
                round(MARGIN + span * (due - day).days / days, 1),
                axis - 10 - STEP * level,
                row["duty__code"],
                where,
                due.isoformat(),
            )
        )
    ticks = []
    for offset in range(0, days + 1, 15):
        x = round(MARGIN + span * offset / days, 1)
        when = day + dt.timedelta(days=offset)
        ticks.append(
            format_html(
                '<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" stroke="#000"/>'
                '<text x="{0}" y="{3}" text-anchor="middle">{4}</text>'
                '<text x="{0}" y="{5}" text-anchor="middle" class="muted">{6}</text>',
                x,
                axis,
                axis + 6,
                axis + 20,
                f"{when:%-d %b}",
                axis + 35,
                "today" if offset == 0 else f"+{offset} days",
            )
        )
    end = day + dt.timedelta(days=days)
    return _svg(
        width=TIMELINE_WIDTH,
        height=height,
        title=f"Deadlines from {display(day)} to {display(end)}",
        desc=(
            f"{len(rows)} open deadlines shown as dots along a {days}-day axis; deadlines on "
            "the same day are stacked. The list that follows names each one."
        ),
        body=format_html(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#000" stroke-width="1.5"/>{}{}',
            MARGIN,
            TIMELINE_WIDTH - MARGIN,
            axis,
            axis,
            format_html_join("", "{}", ((t,) for t in ticks)),
            format_html_join("", "{}", ((d,) for d in dots)),
        ),
        css="chart timeline",
    )


# --- Trend: % met at each month end ----------------------------------------------

TREND_WIDTH = 640
PLOT_TOP = 24
PLOT_BOTTOM = 200
PLOT_LEFT = 48


def trend_chart(points: Sequence[Mapping[str, Any]]) -> SafeString:
    """A bar per month end, its percentage written above it (a dash where nothing was
    applicable, which the description spells out), on a 0-100% scale."""
    plot_height = PLOT_BOTTOM - PLOT_TOP
    slot = (TREND_WIDTH - PLOT_LEFT - 10) / max(len(points), 1)
    grid = format_html_join(
        "",
        '<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" stroke="#bbb"/>'
        '<text x="{3}" y="{4}" text-anchor="end">{5}%</text>',
        (
            (
                PLOT_LEFT,
                TREND_WIDTH - 10,
                PLOT_BOTTOM - plot_height * pct // 100,
                PLOT_LEFT - 6,
                PLOT_BOTTOM - plot_height * pct // 100 + 4,
                pct,
            )
            for pct in (0, 25, 50, 75, 100)
        ),
    )
    bars = []
    for i, point in enumerate(points):
        centre = round(PLOT_LEFT + slot * (i + 0.5), 1)
        value = point["percent"]
        top = round(PLOT_BOTTOM - plot_height * float(value or 0) / 100, 1)
        bar = (
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="#0072B2" stroke="#000"/>',
                round(centre - slot * 0.3, 1),
                top,
                round(slot * 0.6, 1),
                round(PLOT_BOTTOM - top, 1),
            )
            if value
            else SafeString("")
        )
        bars.append(
            format_html(
                '{}<text x="{}" y="{}" text-anchor="middle">{}</text>'
                '<text x="{}" y="{}" text-anchor="middle">{}</text>',
                bar,
                centre,
                round(top - 6, 1),
                "\u2013" if value is None else f"{value}%",
                centre,
                PLOT_BOTTOM + 18,
                f"{point['month_end']:%b %y}",
            )
        )
    described = "; ".join(
        display(p["month_end"]) + ": " + ("no data" if p["percent"] is None else f"{p['percent']}%")
        for p in points
    )
    return _svg(
        width=TREND_WIDTH,
        height=PLOT_BOTTOM + 28,
        title="Percentage of applicable obligations met at each month end",
        desc=described + ". The table that follows gives the counts.",
        body=format_html("{}{}", grid, format_html_join("", "{}", ((b,) for b in bars))),
        css="chart trend",
    )


# --- Tables shaped for the template ------------------------------------------------


def heatmap_grid(heatmap: Mapping[str, Any]) -> dict[str, Any]:
    """Duties down, services across (duty codes are long, services few), each cell the look
    of its state."""
    services = heatmap["rows"]
    # Each state's cell is written once and repeated: at 25 services by 50 duties, building
    # the cells in a template loop (or escaping each one) cost more than the page's queries.
    # A class per colour (the template styles them), not a style attribute, which the
    # Content Security Policy would refuse.
    cell = (
        '<td class="tint-{}" title="{}"><span aria-hidden="true">{}</span>'
        '<span class="sr">{}</span></td>'
    )
    shown = {
        state: format_html(cell, look.tint[1:], look.label, look.symbol, look.label)
        for state, look in [*CELLS.items(), ("", NO_CELL)]
    }
    return {
        "services": services,
        "rows": [
            {
                "duty": code,
                "cells": mark_safe(
                    "".join(shown.get(s["cells"].get(code, ""), shown[""]) for s in services)
                ),
            }
            for code in heatmap["duties"]
        ],
    }


def heatmap_legend() -> list[Look]:
    return [*dict.fromkeys(CELLS.values()), NO_CELL]


def risk_tables(
    risks: Iterable[Mapping[str, Any]],
    levels: Iterable[Mapping[str, Any]],
    harm_labels: Mapping[str, str],
) -> list[dict[str, Any]]:
    """One table per family of harm: harm kinds down, services across, each cell the level's
    label (from the catalogue's vocabulary) and code (for its colour)."""
    # Each level's cell is written once (as the heatmap's are): harms by services is
    # hundreds of cells on every page load.
    cells = {
        int(level["rank"]): format_html(
            '<td class="level-{}">{}</td>', level["code"], level["label"]
        )
        for level in levels
    }
    unrated = format_html("<td>{}</td>", "Not rated")
    families: dict[str, list[Mapping[str, Any]]] = {}
    for row in risks:
        families.setdefault(row["family"], []).append(row)
    tables = []
    for family, rows in sorted(families.items()):
        harms = sorted(
            {code for row in rows for code in row["levels"]},
            key=lambda code: harm_labels.get(code, code),
        )
        tables.append(
            {
                "family": family,
                "services": [row["service"] for row in rows],
                "rows": [
                    {
                        "harm": harm_labels.get(code, code),
                        "cells": mark_safe(
                            "".join(cells.get(row["levels"].get(code, 0), unrated) for row in rows)
                        ),
                    }
                    for code in harms
                ],
            }
        )
    return tables
