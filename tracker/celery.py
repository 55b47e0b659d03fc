"""The Celery app. Tasks are named, JSON-serialised and acknowledged late."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

from tracker.requestid import task_ended, task_started

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
    # Django's LOGGING (tracker/logs.py) formats the worker's and beat's lines too, JSON in
    # production, each task's carrying its id as the request id.
    worker_hijack_root_logger=False,
    # What a worker prints (a traceback at shutdown, say) goes straight to its own stderr:
    # redirected into logging, whose handler writes to stderr, it would feed itself.
    worker_redirect_stdouts=False,
)
task_prerun.connect(task_started, weak=False)
task_postrun.connect(task_ended, weak=False)
app.autodiscover_tasks()
