"""Reads of the register: lists, my work, the register as of a day, history and evidence."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import F, OuterRef, Q, QuerySet, Subquery

from obligations.access.selectors import AnyUser, scope
from obligations.dates import end_of_day
from obligations.providers.selectors import count_of
from obligations.register.models import Event, Evidence, Obligation
from obligations.register.states import CLOSED_STATUSES, CycleStatus, EventKind, due_within, overdue


def obligations_for_list(user: AnyUser) -> QuerySet[Obligation]:
    """The obligations changelist: one query however many rows."""
    return scope(Obligation.objects.all(), user).select_related(
        "provider", "service", "duty", "owner"
    )


# Long text no list shows: carried through the joins and the sort of a page of the register,
# it tripled the time PostgreSQL took (146 ms -> 64 ms at 100,000 without it).
LIST_DEFERRED = (
    "why",
    "notes",
    "not_applicable_reason",
    "duty__summary",
    "duty__applies",
    "duty__evidence",
    "duty__scope",
    "duty__unverified_note",
    "duty__source_url",
    "owner__password",
)


def evidence_for(obligation: Obligation) -> QuerySet[Evidence]:
    """Every cycle's evidence of an obligation, newest first, in one query."""
    return (
        Evidence.objects.filter(cycle__obligation=obligation)
        .select_related("cycle", "uploaded_by", "purged_by", "superseded_by")
        .order_by("-uploaded_at")
    )


# Rows each section of the morning view shows; the register lists all of them.
MY_WORK_SHOWN = 25


def my_work_filters(user: AnyUser, today: dt.date) -> dict[str, tuple[str, Q]]:
    """The morning view's sections as filters on the register (key -> title, filter): mine
    overdue, mine due in 30 days, awaiting my review, all mine open."""
    live = Q(applicable=True) & ~Q(status__in=CLOSED_STATUSES)
    mine = live & Q(owner_id=user.pk)
    return {
        "overdue": ("Overdue", mine & overdue(today)),
        "30": ("Due in the next 30 days", mine & due_within(today, 30)),
        "review": (
            "Waiting for my review",
            live
            & Q(status=CycleStatus.READY_FOR_REVIEW)
            & ~Q(owner_id=user.pk)
            & ~Q(current_cycle__submitted_by_id=user.pk),
        ),
        "open": ("All my open obligations", mine),
    }


def my_work(user: AnyUser, today: dt.date) -> list[dict[str, Any]]:
    """Each section of the morning view: its key, title, size and most urgent rows (two
    queries each, however much work there is; the register lists the rest)."""
    listed = obligations_for_list(user)
    sections = []
    for key, (title, wanted) in my_work_filters(user, today).items():
        rows = listed.filter(wanted)
        sections.append(
            {
                "key": key,
                "title": title,
                "count": rows.count(),
                "rows": list(rows.order_by("due_date", "pk")[:MY_WORK_SHOWN]),
            }
        )
    return sections


def service_of_evidence(evidence: Evidence) -> int | None:
    return (
        Evidence.objects.filter(pk=evidence.pk)
        .values_list("cycle__obligation__service_id", flat=True)
        .first()
    )


def register_state(
    qs: QuerySet[Obligation], *, as_of: dt.date | None = None
) -> QuerySet[Obligation]:
    """Obligations annotated with the register's state alone (r_applicable, r_status, r_due,
    r_owner_id), as `register` rebuilds it, and with no join: what counting needs. (A join
    that is never read still costs SQLite a lookup per row.)"""
    if as_of is None:
        return qs.annotate(
            r_applicable=F("applicable"),
            r_status=F("status"),
            r_due=F("due_date"),
            r_owner_id=F("owner_id"),
        )
    end, events, past = _past_records(as_of)
    return qs.filter(created_at__lt=end).annotate(
        r_applicable=Subquery(past.values("applicable")[:1]),
        r_status=Subquery(events.exclude(to_status="").values("to_status")[:1]),
        r_due=Subquery(
            events.filter(kind__in=(EventKind.CYCLE_OPENED, EventKind.DUE_CHANGED)).values(
                "due_date"
            )[:1]
        ),
        r_owner_id=Subquery(past.values("owner_id")[:1]),
    )


def register(
    qs: QuerySet[Obligation], *, today: dt.date, as_of: dt.date | None = None
) -> QuerySet[Obligation]:
    """Obligations annotated with the register's columns (r_status, r_due, r_owner, ...),
    either as they stand, or as they stood at the end of `as_of`.

    The past is rebuilt from the append-only record: an obligation's status and due date
    from its events (each status change and each due-date change is an event carrying the
    new value), its owner and applicability from its field history. Every column is a
    correlated subquery, so a page of the past register still costs one query.
    """
    state = register_state(qs, as_of=as_of)
    if as_of is None:
        evidence = current_evidence_of(OuterRef("current_cycle"), today)
        return state.annotate(
            r_cycle=F("current_cycle_id"),
            r_owner=F("owner__username"),
            r_evidence_count=count_of(evidence, "cycle"),
            r_last_change=Subquery(
                Event.objects.filter(obligation=OuterRef("pk"))
                .order_by("-at", "-id")
                .values("at")[:1]
            ),
        )
    end, events, past = _past_records(as_of)
    evidence = (
        Evidence.objects.filter(cycle=OuterRef("r_cycle"), uploaded_at__lt=end)
        .filter(Q(purged_at__isnull=True) | Q(purged_at__gte=end))
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=as_of))
        .exclude(superseded_by__uploaded_at__lt=end)
    )
    return state.annotate(
        r_cycle=Subquery(events.filter(kind=EventKind.CYCLE_OPENED).values("cycle")[:1]),
        r_owner=Subquery(past.values("owner__username")[:1]),
        r_evidence_count=count_of(evidence, "cycle"),
        r_last_change=Subquery(events.values("at")[:1]),
    )


def _past_records(as_of: dt.date) -> tuple[dt.datetime, QuerySet[Event], QuerySet[Any]]:
    """The end of `as_of`, and each obligation's events and field history before it, newest
    first (for correlated subqueries on the obligation)."""
    end = end_of_day(as_of)
    events = Event.objects.filter(obligation=OuterRef("pk"), at__lt=end).order_by("-at", "-id")
    past = Obligation.history.model.objects.filter(  # type: ignore[attr-defined]
        id=OuterRef("pk"), history_date__lt=end
    ).order_by("-history_date", "-history_id")
    return end, events, past


def current_evidence_of(cycle: Any, today: dt.date) -> QuerySet[Evidence]:
    """Evidence that counts for `cycle` (an id or an OuterRef): not purged, not superseded,
    not expired."""
    return Evidence.objects.filter(
        Q(expires_on__isnull=True) | Q(expires_on__gte=today),
        cycle=cycle,
        purged_at__isnull=True,
        superseded_by__isnull=True,
    )


def register_overdue(today: dt.date) -> Q:
    """The register's rows that are overdue on `today` (a filter on `register`'s columns)."""
    return Q(r_applicable=True) & overdue(today, status="r_status", due="r_due")


def states_at(
    days: list[dt.date], obligations: QuerySet[Obligation], *, by_service: bool = False
) -> dict[tuple[int | None, int | None, dt.date], tuple[int, int]]:
    """(met, applicable) at the end of each day, from the events alone, in one query:
    each status event is in force from its time until the obligation's next status event
    (a window function), so an obligation's status at a moment is the event then in force.
    Keyed by (provider, service, day), or (None, None, day) unless `by_service`."""
    adapt = connection.ops.adapt_datetimefield_value
    cuts = [adapt(end_of_day(day)) for day in days]
    try:
        scope_sql, scope_params = obligations.values("pk").query.sql_with_params()
    except EmptyResultSet:  # a scope that can match nothing (no organisation): no states
        return {}
    columns = ", ".join(
        "SUM(CASE WHEN at < %s AND (next_at IS NULL OR next_at >= %s) "
        "AND to_status = 'met' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN at < %s AND (next_at IS NULL OR next_at >= %s) "
        "AND to_status <> 'not_applicable' THEN 1 ELSE 0 END)"
        for _ in cuts
    )
    group = "provider_id, service_id" if by_service else "NULL, NULL"
    params: list[Any] = [value for cut in cuts for value in (cut, cut, cut, cut)]
    sql = (
        f"SELECT {group}, {columns} FROM ("
        " SELECT e.to_status, e.at, o.provider_id, o.service_id,"
        " LEAD(e.at) OVER (PARTITION BY e.obligation_id ORDER BY e.at, e.id) AS next_at"
        f" FROM {Event._meta.db_table} e"
        f" JOIN {Obligation._meta.db_table} o ON o.id = e.obligation_id"
        f" WHERE e.to_status <> '' AND e.at < %s AND e.obligation_id IN ({scope_sql})"
        ") AS states" + (" GROUP BY provider_id, service_id" if by_service else "")
    )
    result: dict[tuple[int | None, int | None, dt.date], tuple[int, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, adapt(end_of_day(max(days))), *scope_params])
        for row in cursor.fetchall():
            for i, day in enumerate(days):
                met, applicable = int(row[2 + 2 * i] or 0), int(row[3 + 2 * i] or 0)
                result[(row[0], row[1], day)] = (met, applicable)
    return result
