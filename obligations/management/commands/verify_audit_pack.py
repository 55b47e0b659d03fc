"""Check an audit pack: its signature, every file against the manifest, the evidence hashes."""

from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from obligations.exports.pack_verify import verify


class Command(BaseCommand):
    help = (
        "Verify an audit pack: the manifest's signature, each file's SHA-256 and size, "
        "nothing added or removed, and each evidence file against its hash at upload."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pack", help="The pack (.zip).")
        parser.add_argument(
            "--public-key",
            help="The signer's public key (PEM); default: this installation's.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        pem, key_file = None, options["public_key"]
        if key_file:
            try:
                pem = Path(key_file).read_text(encoding="ascii")
            except OSError as exc:
                raise CommandError(
                    f"--public-key: cannot read {key_file}: {exc.strerror}"
                ) from None
            except UnicodeDecodeError:
                raise CommandError(f"--public-key: {key_file} is not a PEM file.") from None
        path = Path(options["pack"])
        if not path.exists():
            raise CommandError(f"{path}: no such file.")
        try:
            result = verify(path, pem)
        except ValueError as exc:
            raise CommandError(f"--public-key: {exc}.") from None
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        for warning in result.warnings:
            self.stdout.write(f"WARNING: {warning}")
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(f"PROBLEM: {problem}")
            problems = result.problems
            raise CommandError(
                f"{path} is not valid: "
                + (problems[0] if len(problems) == 1 else f"{len(problems)} problems (above).")
            )
        self.stdout.write(f"OK: {result.files} files verified, signature valid")
