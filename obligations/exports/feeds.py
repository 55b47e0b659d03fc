"""iCalendar feeds of deadlines, at secret addresses made and revoked in the admin.

A calendar application cannot sign in, so the address is the credential: it carries a random
secret whose hash names the feed. An unknown, revoked or no-longer-permitted address is a 404
whatever the reason, so that the answer says nothing about which addresses exist.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import icalendar
from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from obligations.access.models import CalendarFeed
from obligations.access.selectors import scope
from obligations.access.tokens import secret_hash
from obligations.dates import london_today
from obligations.inputs import one_line
from obligations.providers.models import Service
from obligations.register.models import ObligationCycle
from obligations.register.states import CLOSED_STATUSES

# Calendar applications poll; writing last_used_at on every poll would be a write per read.
LAST_USED_RESOLUTION = dt.timedelta(hours=1)


PRODID = "-//OSA obligations tracker//Deadlines//EN"


def feed_deadlines(feed: CalendarFeed) -> QuerySet[ObligationCycle]:
    """The feed's selector: the open current cycles with a due date that it lists.

    A user's feed lists the obligations they own, a service's feed every obligation of the
    service; either way only what the feed's user may see today (`selectors.scope`). One
    query however many rows.
    """
    cycles = ObligationCycle.objects.filter(
        obligation__current_cycle=F("pk"),
        obligation__applicable=True,
        due_date__isnull=False,
    ).exclude(status__in=CLOSED_STATUSES)
    if feed.service_id is None:
        cycles = cycles.filter(obligation__owner_id=feed.user_id)
    else:
        cycles = cycles.filter(obligation__service_id=feed.service_id)
    return (
        scope(cycles, feed.user)
        .select_related(
            "obligation__duty", "obligation__service", "obligation__provider", "obligation__owner"
        )
        .order_by("due_date", "pk")
    )


def _live_feed(secret: str) -> CalendarFeed:
    feed = (
        CalendarFeed.objects.select_related("user", "service")
        .filter(
            secret_hash=secret_hash(secret),
            revoked_at__isnull=True,
            user__is_active=True,
        )
        .first()
    )
    # A service feed ends when its user can no longer see the service.
    if feed is None or (
        feed.service_id is not None
        and not scope(Service.objects.filter(pk=feed.service_id), feed.user).exists()
    ):
        raise Http404("No such calendar.")
    return feed


def _mark_used(feed: CalendarFeed, now: dt.datetime) -> None:
    stale = now - LAST_USED_RESOLUTION
    if feed.last_used_at is None or feed.last_used_at < stale:
        # Conditional, so that concurrent polls write once.
        CalendarFeed.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=feed.pk
        ).update(last_used_at=now)


def _event(cycle: ObligationCycle, today: dt.date, host: str) -> icalendar.Event:
    obligation = cycle.obligation
    assert cycle.due_date is not None  # feed_deadlines lists only dated cycles
    what = one_line(
        f"{obligation.duty.code} {obligation.duty.title} — "
        f"{obligation.service or obligation.provider}"
    )
    overdue = cycle.due_date < today
    owner = obligation.owner
    owner_name = one_line(owner.get_full_name() or owner.get_username()) if owner else "nobody"
    url = settings.SITE_URL.rstrip("/") + reverse(
        "admin:obligations_obligation_change", args=[obligation.pk]
    )
    description = "\n".join(
        [
            f"Section: {obligation.duty.section}",
            f"Status: {cycle.get_status_display()}" + (" (overdue)" if overdue else ""),
            f"Owner: {owner_name}",
            url,
        ]
    )
    alarm = icalendar.Alarm.new(description=f"Due tomorrow: {what}")
    alarm.add("action", "DISPLAY")
    alarm.add("trigger", dt.timedelta(days=-1))
    return icalendar.Event.new(
        # Stable, so that a client updates the event rather than adding another.
        uid=f"obligation-{obligation.pk}-cycle-{cycle.pk}@{host}",
        summary=f"OVERDUE: {what}" if overdue else f"Due: {what}",
        start=cycle.due_date,
        # When the information last changed, as RFC 5545 asks of a published calendar.
        stamp=max(cycle.updated_at, obligation.updated_at).astimezone(dt.UTC),
        description=description,
        url=url,
        subcomponents=[alarm],
    )


def render_calendar(feed: CalendarFeed, cycles: QuerySet[ObligationCycle]) -> bytes:
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    today = london_today()
    name = f"OSA deadlines: {feed.service}" if feed.service else f"OSA deadlines: {feed.user}"
    calendar = icalendar.Calendar.new(
        prodid=PRODID,
        # Also written as X-WR-CALNAME, which most clients read. As text, so that it is
        # escaped (icalendar writes a plain string there as it is).
        name=icalendar.vText(one_line(name)),
        uid=f"calendar-feed-{feed.pk}@{host}",
        subcomponents=[_event(cycle, today, host) for cycle in cycles],
    )
    return calendar.to_ical()


@require_GET
def calendar_feed(request: HttpRequest, secret: str) -> HttpResponse:
    """The feed behind a secret address; no sign-in, the secret is the credential."""
    feed = _live_feed(secret)
    _mark_used(feed, timezone.now())
    response = HttpResponse(
        render_calendar(feed, feed_deadlines(feed)), content_type="text/calendar; charset=utf-8"
    )
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = 'inline; filename="osa-deadlines.ics"'
    return response
