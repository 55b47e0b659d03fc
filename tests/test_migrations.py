"""Data migrations keep the record true: events written before a field existed get it back."""

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

# Migrating is the tables' owner's work (on PostgreSQL the app's role owns nothing).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("table_owner")]

BEFORE = [("obligations", "0007_assessments_and_measures")]
AFTER = [("obligations", "0008_api_tokens_feeds_point_in_time")]


def migrate(targets):  # type: ignore[no-untyped-def]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def old_obligation(apps, cycle_status="not_started"):  # type: ignore[no-untyped-def]
    """An obligation as an older schema stored it, with its first cycle: (actor, obligation,
    cycle)."""
    User = apps.get_model("auth", "User")
    Provider = apps.get_model("obligations", "Provider")
    actor = User.objects.create(username="old-actor")
    provider = Provider.objects.create(
        organisation=apps.get_model("obligations", "Organisation").objects.create(name="Old"),
        name="Old provider",
    )
    version = apps.get_model("obligations", "CatalogueVersion").objects.create(
        version="old", published=dt.date(2025, 1, 1), sha256="0" * 64, parameters={}
    )
    duty = apps.get_model("obligations", "Duty").objects.create(
        code="OLD-DUTY",
        section="s.1",
        part="3",
        title="Old",
        instrument="Online Safety Act 2023",
        summary="Old",
        status="in_force",
        applies={},
        deadline={},
        source_url="https://www.legislation.gov.uk/ukpga/2023/50",
        catalogue_version=version,
    )
    obligation = apps.get_model("obligations", "Obligation").objects.create(
        provider=provider, duty=duty, why="old"
    )
    cycle = apps.get_model("obligations", "ObligationCycle").objects.create(
        obligation=obligation,
        period_start=dt.date(2026, 1, 1),
        due_date=dt.date(2026, 3, 1),
        trigger="initial",
        status=cycle_status,
    )
    return actor, obligation, cycle


def test_old_events_get_the_due_dates_their_reasons_recorded():
    apps = migrate(BEFORE)
    Event = apps.get_model("obligations", "Event")
    actor, obligation, cycle = old_obligation(apps)
    now = timezone.now()

    def event(kind, reason, minutes):  # type: ignore[no-untyped-def]
        return Event.objects.create(
            obligation=obligation,
            cycle=cycle,
            kind=kind,
            actor=actor,
            at=now + dt.timedelta(minutes=minutes),
            reason=reason,
            source="admin",
        ).pk

    opened = event("cycle_opened", "First cycle", 0)
    moved = event("due_changed", "Due date moved from 2026-01-31 to 2026-02-15. Ofcom.", 1)
    kept = event("due_changed", "Due date kept at 2026-02-15, already before 2026-04-01.", 2)
    again = event("due_changed", "Due date moved from 2026-02-15 to 2026-03-01. Agreed.", 3)

    apps = migrate(AFTER)
    Event = apps.get_model("obligations", "Event")
    due = dict(Event.objects.values_list("pk", "due_date"))
    assert due[opened] == dt.date(2026, 1, 31)  # what it was before the first move
    assert due[moved] == dt.date(2026, 2, 15)
    assert due[kept] == dt.date(2026, 2, 15)
    assert due[again] == dt.date(2026, 3, 1)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_obligations_take_their_current_cycles_status_and_due_date():
    apps = migrate([("obligations", "0010_access_log_and_append_only")])
    _, first, cycle = old_obligation(apps, cycle_status="in_progress")
    Obligation = apps.get_model("obligations", "Obligation")
    Cycle = apps.get_model("obligations", "ObligationCycle")
    duty = first.duty

    def another(code):  # type: ignore[no-untyped-def]
        duty.pk, duty.code = None, code
        duty.save()
        return Obligation.objects.create(provider_id=first.provider_id, duty=duty, why="old")

    second = another("OLD-DUTY-2")
    met = Cycle.objects.create(
        obligation=second, period_start=dt.date(2025, 1, 1), trigger="initial", status="met"
    )
    Obligation.objects.filter(pk=first.pk).update(current_cycle=cycle)
    Obligation.objects.filter(pk=second.pk).update(current_cycle=met)
    # One created but not yet given its cycle (as the services do, in one transaction).
    cycleless = another("OLD-DUTY-3")

    apps = migrate([("obligations", "0011_obligation_current_status")])
    Obligation = apps.get_model("obligations", "Obligation")
    copied = {
        pk: (status, due)
        for pk, status, due in Obligation.objects.values_list("pk", "status", "due_date")
    }
    assert copied == {
        first.pk: ("in_progress", dt.date(2026, 3, 1)),
        second.pk: ("met", None),
        cycleless.pk: ("", None),
    }
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_dates_no_one_would_type_are_brought_into_range_before_the_constraints():
    """A register that accepted 9999-12-31 (it stopped the reminder sweep) still upgrades: the
    date is set to the end of the range, with an event saying so by the system user."""
    apps = migrate([("obligations", "0014_obligation_live_counts")])
    _, obligation, cycle = old_obligation(apps)
    Cycle = apps.get_model("obligations", "ObligationCycle")
    Cycle.objects.filter(pk=cycle.pk).update(due_date=dt.date(9999, 12, 31))
    apps.get_model("obligations", "Obligation").objects.filter(pk=obligation.pk).update(
        current_cycle=cycle, status="not_started", due_date=dt.date(9999, 12, 31)
    )
    apps = migrate([("obligations", "0015_plausible_dates")])
    Obligation = apps.get_model("obligations", "Obligation")
    assert Obligation.objects.get(pk=obligation.pk).due_date == dt.date(2100, 12, 31)
    event = apps.get_model("obligations", "Event").objects.get(obligation_id=obligation.pk)
    assert (event.kind, event.actor.username, event.due_date) == (
        "due_changed",
        "osa-tracker-system",
        dt.date(2100, 12, 31),
    )
    assert "Due date 9999-12-31 was outside the dates the tracker accepts" in event.reason
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_tokens_an_admin_made_for_someone_else_are_revoked_on_upgrade():
    apps = migrate([("obligations", "0025_assessment_private_channels")])
    User, ApiToken = apps.get_model("auth", "User"), apps.get_model("obligations", "ApiToken")
    admin, member = User.objects.create(username="ada"), User.objects.create(username="casey")
    own = ApiToken.objects.create(
        user=member, created_by=member, name="own", prefix="osa_aaaa", key_hash="a" * 64
    )
    minted = ApiToken.objects.create(
        user=member, created_by=admin, name="minted", prefix="osa_bbbb", key_hash="b" * 64
    )
    apps = migrate([("obligations", "0026_reminders_kept_tokens_for_others_revoked")])
    ApiToken = apps.get_model("obligations", "ApiToken")
    assert ApiToken.objects.get(pk=own.pk).revoked_at is None
    assert ApiToken.objects.get(pk=minted.pk).revoked_at is not None
    log = apps.get_model("admin", "LogEntry").objects.get(object_id=str(minted.pk))
    assert log.user.username == "osa-tracker-system"
    assert log.change_message.startswith("Revoked on upgrade")
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
