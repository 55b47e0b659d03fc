"""Scheduling a nightly task from a migration, for the migrations that add one. Staff change
the time in the admin (Periodic tasks); a migration never overwrites their change. (Django
skips modules of this folder whose names begin with an underscore.)"""

from django.conf import settings


def nightly(name: str, task: str, *, hour: str, minute: str, description: str):
    """RunPython's forward and backward functions for one task at hour:minute in London."""

    def schedule(apps, schema_editor):
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        if PeriodicTask.objects.filter(name=name).exists():
            return
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone=settings.TIME_ZONE,
        )
        PeriodicTask.objects.create(name=name, task=task, crontab=crontab, description=description)

    def unschedule(apps, schema_editor):
        apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()

    return schedule, unschedule


def every(name: str, task: str, *, seconds: int, description: str):
    """RunPython's forward and backward functions for one task every `seconds`, each run
    expiring when the next is due (a heartbeat queued while no worker runs is not worth
    running late)."""

    def schedule(apps, schema_editor):
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        if PeriodicTask.objects.filter(name=name).exists():
            return
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.create(
            name=name,
            task=task,
            interval=interval,
            expire_seconds=seconds,
            description=description,
        )

    def unschedule(apps, schema_editor):
        apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()

    return schedule, unschedule
