"""Beat's heartbeat for /health/: a worker records the heartbeat task beat queues every
minute; a heartbeat older than twice the interval means beat, or every worker, has stopped."""

from django.conf import settings
from django.db import migrations, models

from obligations.migrations._beat import every

schedule, unschedule = every(
    "Beat heartbeat",
    "obligations.beat_heartbeat",
    seconds=settings.BEAT_HEARTBEAT_SECONDS,
    description="Records that beat, the broker and a worker are running; /health/ is "
    "unhealthy when the last heartbeat is older than twice this interval.",
)


class Migration(migrations.Migration):

    dependencies = [
        ('obligations', '0029_alter_event_kind'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.CreateModel(
            name='Heartbeat',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=50, unique=True)),
                ('at', models.DateTimeField()),
            ],
        ),
        migrations.RunPython(schedule, unschedule),
    ]
