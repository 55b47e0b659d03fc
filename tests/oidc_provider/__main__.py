"""The provider's commands, run with OIDC_PROVIDER_DIR and OIDC_PROVIDER_ISSUER set
(server.py does it):

    python -m tests.oidc_provider serve ADDRESS --client-id=ID --client-secret=SECRET URI...
    python -m tests.oidc_provider user USERNAME PASSWORD [--email E] [--group G ...]

`serve` makes the database, registers the tracker as a confidential client and serves until
stopped; `user` adds a user, or resets an existing one's password, e-mail and groups, and
prints their `sub`."""

import argparse
import os
import sys

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.oidc_provider.settings"
django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402  (after setup)
from django.core.management import call_command  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402


def serve(address: str, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
    call_command("migrate", verbosity=0)
    Application.objects.create(
        name="OSA tracker",
        client_id=client_id,
        client_secret=client_secret,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(redirect_uris),
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,  # no consent page: the person only signs in
    )
    call_command("runserver", address, use_reloader=False, skip_checks=True)


def user(username: str, password: str, email: str, groups: list[str]) -> None:
    person, _ = User.objects.get_or_create(username=username)
    person.email = email
    person.set_password(password)
    person.save()
    person.groups.set([Group.objects.get_or_create(name=name)[0] for name in groups])
    print(person.pk)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.oidc_provider")
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve")
    serving.add_argument("address")
    # Options written --name=value: a random secret may begin with "-", which argparse would
    # take for an option of its own if it stood alone.
    serving.add_argument("--client-id", required=True)
    serving.add_argument("--client-secret", required=True)
    serving.add_argument("redirect_uris", nargs="+")
    adding = commands.add_parser("user")
    adding.add_argument("username")
    adding.add_argument("password")
    adding.add_argument("--email", default="")
    adding.add_argument("--group", action="append", default=[])
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.address, args.client_id, args.client_secret, args.redirect_uris)
    else:
        user(args.username, args.password, args.email, args.group)


if __name__ == "__main__":
    main(sys.argv[1:])
