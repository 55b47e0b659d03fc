"""What the reminder tests share: days from the fixed today, an obligation in a given state,
the items of a digest sent to someone."""

import datetime as dt

from django.core import mail

from obligations.access.users import get_system_user
from obligations.catalogue.models import Duty
from obligations.register.cycles import open_cycle
from obligations.register.evidence import add_evidence_link
from obligations.register.models import Obligation
from obligations.register.states import CycleStatus, CycleTrigger, EventSource
from obligations.register.workflow import do_approve, do_start, do_submit_for_review
from tests.clock import TODAY

ADMIN = EventSource.ADMIN


def day(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def obligation(ctx, code="U2U-ILLEGAL-RA", due=None, owner="owner", status=None):  # type: ignore[no-untyped-def]
    """One obligation with its first cycle, as the services create it."""
    system = get_system_user()
    ob = Obligation.objects.create(
        provider=ctx["service"].provider,
        service=ctx["service"],
        duty=Duty.objects.get(code=code),
        owner=ctx[owner] if owner else None,
        why="test",
    )
    open_cycle(actor=system, obligation=ob, due=due, trigger=CycleTrigger.INITIAL, source=ADMIN)
    ob.refresh_from_db()
    if status == CycleStatus.MET:
        cycle = ob.current_cycle
        do_start(actor=system, cycle=cycle, source=ADMIN)
        add_evidence_link(
            actor=ctx["owner"], cycle=cycle, url="https://example.test/ra", title="RA", source=ADMIN
        )
        do_submit_for_review(actor=ctx["owner"], cycle=cycle, source=ADMIN)
        do_approve(actor=ctx["manager"], cycle=cycle, source=ADMIN)
        ob.refresh_from_db()
    return ob


def items_to(user) -> list[str]:  # type: ignore[no-untyped-def]
    """The reminder lines of the digests sent to a user in the last sweep."""
    return [
        line[2:]
        for message in mail.outbox
        if message.to == [user.email]
        for line in message.body.splitlines()
        if line.startswith("- ")
    ]
