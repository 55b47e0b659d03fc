"""Encrypt the team chat webhooks' stored addresses and signing secrets again under the first
of NOTIFICATION_ENCRYPTION_KEY's keys: run after putting a new key first, then drop the old."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError

from obligations.reminders.endpoints import reseal_webhooks


class Command(BaseCommand):
    help = "Re-encrypt webhook addresses and secrets under the first configured key."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = reseal_webhooks()
        except InvalidToken:
            raise CommandError(
                "A stored webhook cannot be read with any configured key: keep the old key in "
                "NOTIFICATION_ENCRYPTION_KEY (after the new one) until this has run"
            ) from None
        if options["verbosity"]:
            self.stdout.write(f"{count} webhook(s) encrypted under the first key.")
