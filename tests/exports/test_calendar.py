"""Calendar feeds: what a feed lists, the secret address (hashed, revocable, a 404 when it
should not answer), the admin that makes one, and a constant query count."""

import datetime as dt
import hashlib
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from icalendar import Calendar

from obligations.access.actions import end_membership
from obligations.access.models import CalendarFeed, Membership
from obligations.access.tokens import create_calendar_feed, revoke_calendar_feed
from obligations.access.users import get_system_user
from obligations.exports.feeds import feed_deadlines
from obligations.providers.models import Service
from obligations.register.actions import assign_owner, set_due_date
from obligations.register.models import Obligation
from obligations.register.states import CycleStatus, EventSource
from tests.conftest import TODAY
from tests.factories import (
    OrganisationFactory,
    ProviderFactory,
    applied_service,
    member,
    put_in,
)
from tests.helpers import assert_constant_queries


def obligation(service_or_provider, code):  # type: ignore[no-untyped-def]
    filters: dict[str, object] = (
        {"service": service_or_provider}
        if isinstance(service_or_provider, Service)
        else {"provider": service_or_provider, "service": None}
    )
    return Obligation.objects.select_related("current_cycle").get(duty__code=code, **filters)


def own(user, *obligations):  # type: ignore[no-untyped-def]
    for ob in obligations:
        assign_owner(actor=get_system_user(), obligation=ob, owner=user, source=EventSource.ADMIN)


def uid(ob):  # type: ignore[no-untyped-def]
    host = urlsplit(settings.SITE_URL).hostname
    return f"obligation-{ob.pk}-cycle-{ob.current_cycle_id}@{host}"


@pytest.fixture
def world(catalogue):  # type: ignore[no-untyped-def]
    ours, theirs = OrganisationFactory(name="Ours"), OrganisationFactory(name="Theirs")
    provider = ProviderFactory(organisation=ours, name="Our provider")
    mine = applied_service(provider=provider, name="Our service")
    other = applied_service(
        provider=ProviderFactory(organisation=theirs), name="Their secret service"
    )
    casey, dana = member(ours, username="casey"), member(ours, username="dana")
    # The catalogue dates every one of these in the past (overdue on the fixed clock) except
    # the children's access assessment, moved into the future here.
    caa, ra = obligation(mine, "CAA"), obligation(mine, "U2U-ILLEGAL-RA")
    met, undated = obligation(mine, "U2U-RECORDS"), obligation(mine, "U2U-REPORTING")
    fees = obligation(provider, "FEES-PAY")
    own(casey, caa, ra, met, undated, fees)
    own(dana, obligation(mine, "U2U-ILLEGAL-SAFETY"))
    set_due_date(
        actor=casey,
        cycle=caa.current_cycle,
        due=TODAY + dt.timedelta(days=10),
        reason="Planned.",
        source=EventSource.ADMIN,
    )
    # Meeting a duty needs evidence and a second reviewer, beside the point here.
    put_in(met.current_cycle, CycleStatus.MET)
    # Owned by casey but in another organisation: not casey's to see.
    Obligation.objects.filter(service=other).update(owner=casey)
    return {
        "ours": ours,
        "mine": mine,
        "other": other,
        "casey": casey,
        "dana": dana,
        "caa": obligation(mine, "CAA"),
        "ra": ra,
        "fees": fees,
    }


def new_feed(user, service=None):  # type: ignore[no-untyped-def]
    return create_calendar_feed(actor=user, user=user, service=service)


def fetch(client, secret):  # type: ignore[no-untyped-def]
    return client.get(reverse("calendar-feed", args=[secret]))


def events(response):  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    return {str(e["UID"]): e for e in Calendar.from_ical(response.content).walk("VEVENT")}


def test_a_user_feed_lists_the_users_own_open_dated_obligations(client, world):
    _, secret = new_feed(world["casey"])
    response = fetch(client, secret)
    found = events(response)
    # Not the met one, the undated one, dana's, or the other organisation's.
    assert set(found) == {uid(world["caa"]), uid(world["ra"]), uid(world["fees"])}
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Cache-Control"] == "private, max-age=300"
    assert response["X-Content-Type-Options"] == "nosniff"
    calendar = Calendar.from_ical(response.content)
    assert str(calendar["X-WR-CALNAME"]) == "OSA deadlines: casey"

    caa = found[uid(world["caa"])]
    assert caa.decoded("DTSTART") == TODAY + dt.timedelta(days=10)
    assert caa["DTSTART"].params["VALUE"] == "DATE"
    assert str(caa["SUMMARY"]).startswith("Due: CAA ")
    assert str(caa["SUMMARY"]).endswith("— Our service")
    admin_url = settings.SITE_URL.rstrip("/") + reverse(
        "admin:obligations_obligation_change", args=[world["caa"].pk]
    )
    assert str(caa["URL"]) == admin_url
    description = str(caa["DESCRIPTION"])
    assert "Status: Not started" in description and "Owner: casey" in description
    assert admin_url in description
    (alarm,) = caa.walk("VALARM")
    assert str(alarm["ACTION"]) == "DISPLAY"
    assert alarm.decoded("TRIGGER") == dt.timedelta(days=-1)

    ra = found[uid(world["ra"])]
    assert ra.decoded("DTSTART") == world["ra"].current_cycle.due_date < TODAY
    assert str(ra["SUMMARY"]).startswith("OVERDUE: U2U-ILLEGAL-RA ")
    assert str(found[uid(world["fees"])]["SUMMARY"]).endswith("— Our provider")


def test_a_service_feed_lists_every_open_dated_obligation_of_the_service(client, world):
    mine = world["mine"]
    _, secret = new_feed(world["dana"], mine)
    found = events(fetch(client, secret))
    expected = {
        uid(obligation(mine, code)) for code in ("CAA", "U2U-ILLEGAL-RA", "U2U-ILLEGAL-SAFETY")
    }
    assert set(found) == expected
    assert str(Calendar.from_ical(fetch(client, secret).content)["X-WR-CALNAME"]) == (
        "OSA deadlines: Our service"
    )


@pytest.mark.parametrize(
    "stored", ["Chat\r\nBEGIN:VEVENT\r\nSUMMARY:Forged", "Tab\there", "Esc\x1b[31m", "Ls\u2028x"]
)
def test_a_name_stored_before_names_were_one_line_still_makes_a_valid_feed(client, world, stored):
    # Refused where it is typed now; rows saved before that are still served.
    Service.objects.filter(pk=world["mine"].pk).update(name=stored)
    get_user_model().objects.update(first_name="Owner\r\nX", last_name="Y")
    _, secret = new_feed(world["dana"], world["mine"])
    response = fetch(client, secret)
    assert response.status_code == 200
    found = events(response)
    assert len(found) == 3  # the forged event is not one of them
    calendar = Calendar.from_ical(response.content)
    name = str(calendar["X-WR-CALNAME"])
    assert name.startswith("OSA deadlines: ") and name.isprintable()
    for event in found.values():
        assert str(event["SUMMARY"]).isprintable()
        owner = next(line for line in str(event["DESCRIPTION"]).splitlines() if "Owner" in line)
        assert owner.isprintable()


def test_a_feed_of_a_service_the_user_cannot_see_is_refused(world):
    with pytest.raises(PermissionDenied, match="not a member"):
        new_feed(world["casey"], world["other"])
    with pytest.raises(PermissionDenied):
        create_calendar_feed(actor=world["dana"], user=world["casey"])
    assert not CalendarFeed.objects.exists()


def test_unknown_and_revoked_addresses_are_404(client, world):
    assert fetch(client, "not-a-secret").status_code == 404
    feed, secret = new_feed(world["casey"])
    assert fetch(client, secret).status_code == 200
    with pytest.raises(PermissionDenied):
        revoke_calendar_feed(actor=world["dana"], feed=feed)
    assert revoke_calendar_feed(actor=world["casey"], feed=feed)
    assert fetch(client, secret).status_code == 404
    # Revoking again changes nothing; the log names who revoked, once.
    assert not revoke_calendar_feed(actor=world["casey"], feed=feed)
    entry = LogEntry.objects.get(object_id=str(feed.pk), action_flag=CHANGE)
    assert entry.user_id == world["casey"].pk
    assert client.post(reverse("calendar-feed", args=[secret])).status_code == 405


def test_a_service_feed_is_404_once_its_user_loses_membership(client, world):
    _, service_secret = new_feed(world["casey"], world["mine"])
    _, own_secret = new_feed(world["casey"])
    assert fetch(client, service_secret).status_code == 200
    for membership in Membership.objects.filter(user=world["casey"]):
        end_membership(actor=get_system_user(), membership=membership)
    assert fetch(client, service_secret).status_code == 404
    # The user's own feed still answers, with nothing they can no longer see.
    assert events(fetch(client, own_secret)) == {}


def test_only_the_secrets_hash_is_stored(world):
    feed, secret = new_feed(world["casey"])
    row = CalendarFeed.objects.filter(pk=feed.pk).values().get()
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in row.values())
    assert len(secret) >= 43  # 256 random bits


def test_last_used_is_written_at_most_once_an_hour(client, world, clock):
    feed, secret = new_feed(world["casey"])
    fetch(client, secret)
    feed.refresh_from_db()
    first = feed.last_used_at
    assert first is not None
    clock.shift(dt.timedelta(minutes=30))
    fetch(client, secret)
    feed.refresh_from_db()
    assert feed.last_used_at == first
    clock.shift(dt.timedelta(minutes=31))
    fetch(client, secret)
    feed.refresh_from_db()
    assert feed.last_used_at == first + dt.timedelta(minutes=61)


def test_the_admin_makes_a_feed_and_shows_its_address_once(client, world):
    casey = world["casey"]
    client.force_login(casey)
    add_url = reverse("admin:obligations_calendarfeed_add")
    body = client.get(add_url).content.decode()
    assert "Our service" in body and "Their secret service" not in body
    # Another organisation's service is not a choice.
    response = client.post(add_url, {"service": world["other"].pk})
    assert response.status_code == 200 and not CalendarFeed.objects.exists()

    response = client.post(add_url, {"service": world["mine"].pk}, follow=True)
    assert response.status_code == 200
    feed = CalendarFeed.objects.get()
    assert (feed.user, feed.service) == (casey, world["mine"])
    shown = [
        str(message)
        for message in response.context["messages"]
        if "cannot be shown" in str(message)
    ]
    assert len(shown) == 1
    prefix = settings.SITE_URL.rstrip("/") + "/calendar/"
    address = shown[0].split(prefix, 1)[1].split(".ics", 1)[0]
    assert hashlib.sha256(address.encode()).hexdigest() == feed.secret_hash
    assert events(client.get(f"/calendar/{address}.ics"))
    # Not shown again: neither on the list nor on the feed's page.
    for url in (
        reverse("admin:obligations_calendarfeed_changelist"),
        reverse("admin:obligations_calendarfeed_change", args=[feed.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert address not in response.content.decode()


def test_the_admin_lists_and_revokes_only_the_users_own_feeds(client, world):
    mine, _ = new_feed(world["casey"])
    dana_feed, dana_secret = new_feed(world["dana"])
    client.force_login(world["casey"])
    changelist = reverse("admin:obligations_calendarfeed_changelist")
    assert "dana" not in client.get(changelist).content.decode()
    change = reverse("admin:obligations_calendarfeed_change", args=[dana_feed.pk])
    assert client.get(change).status_code == 404
    client.post(changelist, {"action": "revoke", "_selected_action": [mine.pk, dana_feed.pk]})
    mine.refresh_from_db()
    dana_feed.refresh_from_db()
    assert mine.revoked_at is not None
    assert dana_feed.revoked_at is None
    assert fetch(client, dana_secret).status_code == 200
    delete = reverse("admin:obligations_calendarfeed_delete", args=[mine.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert CalendarFeed.objects.filter(pk=mine.pk).exists()


def test_a_feed_costs_the_same_queries_at_3_and_30_obligations(client, catalogue):
    org = OrganisationFactory()
    user = member(org)
    provider = ProviderFactory(organisation=org)
    feed, secret = new_feed(user)

    def grow(size):  # type: ignore[no-untyped-def]
        while feed_deadlines(feed).count() < size:
            applied_service(provider=provider)
            Obligation.objects.filter(provider=provider).update(owner=user)

    def measure():  # type: ignore[no-untyped-def]
        assert len(events(fetch(client, secret))) == feed_deadlines(feed).count()

    assert_constant_queries(grow, measure, sizes=(3, 30))
