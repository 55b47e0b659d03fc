"""Put the nightly step that brings duties into force in beat's schedule (01:30 in London, before
the reminder sweep). Staff change the time in the admin (Periodic tasks); this never overwrites
their change.
"""

from django.conf import settings
from django.db import migrations

NAME = "Duties coming into force"


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=NAME).exists():
        return
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="30",
        hour="1",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.create(
        name=NAME,
        task="obligations.apply_commencements",
        crontab=crontab,
        description="A duty that came into force (or began to bite) gets the day it started to "
        "apply, and its first due date, on every register it belongs to. Safe to run twice.",
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("obligations", "0022_commencement_and_uk_links"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
