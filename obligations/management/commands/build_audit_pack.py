"""Build a signed audit pack of a service's or a provider's obligations, for operators."""

import datetime as dt
import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from obligations.access.users import get_system_user
from obligations.dates import london_today
from obligations.exports.auditpack import write_pack
from obligations.providers.models import Provider, Service
from obligations.register.models import Obligation


def iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of must be a YYYY-MM-DD date, not {value!r}") from None


class Command(BaseCommand):
    help = (
        "Write the signed audit pack (register, evidence files, events, field history, signed "
        "manifest) of one service's or one provider's obligations to a ZIP file. Operators "
        "only: it reads any organisation's data, acting as the system user."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--service", type=int, help="The service's id.")
        which.add_argument("--provider", type=int, help="The provider's id (all its obligations).")
        parser.add_argument(
            "--as-of", help="The register as it stood at the end of this day (YYYY-MM-DD)."
        )
        parser.add_argument("--output", required=True, help="Where to write the pack (.zip).")

    def handle(self, *args: Any, **options: Any) -> None:
        today = london_today()
        as_of = iso_date(options["as_of"]) if options["as_of"] else None
        if as_of and as_of > today:
            raise CommandError("--as-of is the register's past, not its future.")
        obligations = Obligation.objects.all()
        if options["service"] is not None:
            service = Service.objects.filter(pk=options["service"]).first()
            if service is None:
                raise CommandError(f"No service with id {options['service']}.")
            obligations, title = obligations.filter(service=service), f"Service: {service}"
        else:
            provider = Provider.objects.filter(pk=options["provider"]).first()
            if provider is None:
                raise CommandError(f"No provider with id {options['provider']}.")
            obligations, title = obligations.filter(provider=provider), f"Provider: {provider}"
        title += f" (built by {get_system_user().get_username()})"
        output = Path(options["output"])
        # Written beside the target and renamed into place, so that a failed build never
        # leaves half a pack under the name asked for.
        partial = output.with_name(output.name + ".part")
        try:
            with partial.open("wb") as out:
                summary = write_pack(
                    obligations=obligations, title=title, today=today, out=out, as_of=as_of
                )
            os.replace(partial, output)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror or exc}") from None
        finally:
            partial.unlink(missing_ok=True)
        self.stdout.write(f"Wrote {output}: {summary.describe()}")
        self.stdout.write(f"manifest.json SHA-256: {summary.manifest_sha256}")
