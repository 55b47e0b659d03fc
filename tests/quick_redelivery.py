"""The tracker's Celery app for tests/reminders/test_workers.py, but Redis gives an
unacknowledged task back after TEST_VISIBILITY_TIMEOUT seconds instead of
settings.REDIS_VISIBILITY_TIMEOUT, so a test sees the task of a killed worker run again."""

import os

from django.conf import settings

from tracker.celery import app

app.conf.broker_transport_options = {
    **settings.CELERY_REDIS_TRANSPORT_OPTIONS,
    "visibility_timeout": int(os.environ["TEST_VISIBILITY_TIMEOUT"]),
}
