"""Writes of the installation's own state."""

from __future__ import annotations

from django.utils import timezone

from obligations.operations.models import BEAT, Heartbeat


def record_heartbeat(name: str = BEAT) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"at": timezone.now()})
