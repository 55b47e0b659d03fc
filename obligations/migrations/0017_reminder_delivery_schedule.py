"""Put the outbox's delivery in beat's schedule: every settings.REMINDER_DELIVERY_EVERY_MINUTES,
a delivery run sends what is pending and takes over the rows of a run that died once their
lease lapses. Staff change it in the admin (Periodic tasks); this never overwrites their change.
"""

from django.conf import settings
from django.db import migrations

NAME = "Reminder delivery"


def schedule_delivery(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=NAME).exists():
        return
    every = settings.REMINDER_DELIVERY_EVERY_MINUTES
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period="minutes")
    PeriodicTask.objects.create(
        name=NAME,
        task="obligations.deliver_reminders",
        interval=interval,
        # A run still queued when the next is due is dropped (workers down for an hour leave
        # one run to do, not twelve).
        expire_seconds=every * 60,
        description="Sends what is pending in the reminder outbox, and finishes the work of a "
        "delivery run that died (once its claim lapses). Safe to run twice.",
    )


def unschedule_delivery(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("obligations", "0016_protect_records"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule_delivery, unschedule_delivery)]
