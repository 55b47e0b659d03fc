"""The Celery app. Tasks are named, JSON-serialised and acknowledged late."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")

app = Celery("tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # The worker waits for a broker that is late to start; a publisher never waits (see
    # obligations.reminders.outbox.enqueue_delivery).
    broker_connection_retry_on_startup=True,
)
app.autodiscover_tasks()
