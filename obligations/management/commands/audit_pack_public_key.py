"""Print the public key that verifies this installation's audit packs."""

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from obligations.exports.signing import public_key_pem


class Command(BaseCommand):
    help = "Print the PEM public key of the audit pack signing key, to give to auditors."
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.stdout.write(public_key_pem(), ending="")
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
