"""Watch every current cycle, and put the daily reminder sweep in beat's schedule.

The sweep runs at settings.REMINDER_SWEEP_AT (Europe/London) to begin with; staff change it in
the admin (Periodic tasks) afterwards, and this migration never overwrites their change.
"""

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def watch_current_cycles(apps, schema_editor):
    Obligation = apps.get_model("obligations", "Obligation")
    ObligationCycle = apps.get_model("obligations", "ObligationCycle")
    ObligationCycle.objects.filter(
        pk__in=Obligation.objects.filter(current_cycle__isnull=False).values("current_cycle")
    ).update(next_reminder_at=timezone.now())


def schedule_sweep(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name="Daily reminder sweep").exists():
        return
    hour, minute = settings.REMINDER_SWEEP_AT.split(":")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(int(minute)),
        hour=str(int(hour)),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.create(
        name="Daily reminder sweep",
        task="obligations.send_reminders",
        crontab=crontab,
        description="Digests of what is due in each owner's lead times, weekly escalations of "
        "overdue work to owners and managers, evidence about to expire, recurring reviews "
        "rolled forward. Safe to run twice: nothing is sent twice.",
    )


def unschedule_sweep(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name="Daily reminder sweep"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("obligations", "0005_reminders"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(watch_current_cycles, migrations.RunPython.noop),
        migrations.RunPython(schedule_sweep, unschedule_sweep),
    ]
