"""Put the nightly step that stores the dashboard trend's month-end counts in beat's schedule
(02:15 in London, after the commencement run). A dashboard page only reads these counts; a
month end not stored yet is replayed from the events on the page.
"""

from django.db import migrations

from obligations.migrations._beat import nightly

schedule, unschedule = nightly(
    "Dashboard trend counts",
    "obligations.fill_compliance_counts",
    hour="2",
    minute="15",
    description="Stores the met and applicable counts of each past month end of the "
    "dashboard's 12-month trend, once the month is over. Safe to run twice.",
)


class Migration(migrations.Migration):
    dependencies = [
        ("obligations", "0026_reminders_kept_tokens_for_others_revoked"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
