"""What the running installation says about itself: the heartbeat beat sends through a worker."""

from __future__ import annotations

from django.db import models

# The heartbeat beat sends (through a worker) every minute.
BEAT = "beat"


class Heartbeat(models.Model):
    """The last time a periodic task named `name` ran. Beat queues the heartbeat task every
    minute and a worker records it here: /health/ reads its age to tell a stopped beat (or
    no worker at all) from a quiet night."""

    name = models.CharField(max_length=50, unique=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
