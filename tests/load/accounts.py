"""The people of `make load`, in the bench's large organisation ("Bench Group", tests/bench.py):
its compliance owners (who own its obligations, so their My work is full) given a password,
and managers and auditors added. Run against the load test's database:

    DATABASE_URL=... python -m tests.load.accounts PASSWORD PER_ROLE

It prints the usernames by role (JSON), which the locustfile reads from LOAD_ACCOUNTS.
"""

from __future__ import annotations

import json
import os
import sys


def make_accounts(password: str, per_role: int) -> dict[str, list[str]]:
    from django.contrib.auth.models import User

    from obligations.access.actions import add_member
    from obligations.access.models import Organisation, Role
    from obligations.access.users import get_system_user

    organisation = Organisation.objects.get(name="Bench Group")
    system = get_system_user()
    accounts = {
        "compliance": list(
            User.objects.filter(username__startswith="owner")
            .order_by("id")
            .values_list("username", flat=True)[:per_role]
        )
    }
    for role in (Role.MANAGER, Role.AUDITOR):
        names = [f"load-{role}-{i}" for i in range(per_role)]
        for name in names:
            user = User.objects.create(username=name, email=f"{name}@load.example")
            add_member(actor=system, organisation=organisation, user=user, role=role)
        accounts[str(role)] = names
    # One hash for everyone: hashing is slow by design, and one is as good as fifty here.
    first = User.objects.get(username=accounts["compliance"][0])
    first.set_password(password)
    first.save(update_fields=["password"])
    everyone = [name for names in accounts.values() for name in names]
    User.objects.filter(username__in=everyone).update(password=first.password)
    return accounts


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
    import django

    django.setup()
    print(json.dumps(make_accounts(argv[0], int(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
