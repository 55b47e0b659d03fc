"""The bench's register made ready for `make load`, as a deployment's would be. Run against
the load test's database:

    DATABASE_URL=... python -m tests.load.prepare PASSWORD PER_ROLE

The people, in the bench's large organisation ("Bench Group", tests/bench.py): its compliance
owners (who own its obligations, so their My work is full) given a password, managers and
auditors added. It prints their usernames by role (JSON), which the locustfile reads from
LOAD_ACCOUNTS. And what the nightly task has stored by the time anyone opens a dashboard: the
trend's month-end counts (without them every dashboard replays eleven month ends from the
events, 2.3 s a page under load at 100,000 obligations).
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
    from obligations.dashboard.actions import fill_trend_counts
    from obligations.dates import london_today

    fill_trend_counts(today=london_today())
    print(json.dumps(make_accounts(argv[0], int(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
