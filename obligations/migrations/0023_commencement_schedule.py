"""Put the nightly step that brings duties into force in beat's schedule (01:30 in London, before
the reminder sweep). Staff change the time in the admin (Periodic tasks); this never overwrites
their change.
"""

from django.db import migrations

from obligations.migrations._beat import nightly

schedule, unschedule = nightly(
    "Duties coming into force",
    "obligations.apply_commencements",
    hour="1",
    minute="30",
    description="A duty that came into force (or began to bite) gets the day it started to "
    "apply, and its first due date, on every register it belongs to. Safe to run twice.",
)


class Migration(migrations.Migration):
    dependencies = [
        ("obligations", "0022_commencement_and_uk_links"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
