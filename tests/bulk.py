"""Large registers, fast: bulk inserts that bypass the services (for query-count tests and
`make bench`). The rows are what the services would write; nothing here is used by the app.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, models, transaction
from django.db.models import OuterRef, Subquery
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from obligations.access.models import Organisation
from obligations.catalogue.models import Duty, DutyScope
from obligations.providers.models import Provider, Service
from obligations.register.models import Event, Evidence, EvidenceKind, Obligation, ObligationCycle
from obligations.register.states import (
    CLOSED_STATUSES,
    CycleStatus,
    CycleTrigger,
    EventKind,
    EventSource,
)

# A deterministic spread of statuses: mostly open work, some met, a little not applicable.
STATUS_CYCLE = (
    CycleStatus.NOT_STARTED,
    CycleStatus.IN_PROGRESS,
    CycleStatus.NOT_STARTED,
    CycleStatus.READY_FOR_REVIEW,
    CycleStatus.MET,
    CycleStatus.IN_PROGRESS,
    CycleStatus.SENT_BACK,
    CycleStatus.MET,
    CycleStatus.NOT_STARTED,
    CycleStatus.NOT_APPLICABLE,
)


@dataclass
class Register:
    organisation: Organisation
    providers: list[Provider]
    services: list[Service]
    obligations: int


def service_duties() -> list[Duty]:
    """The catalogue's per-service duties (not the provider's, not a notice's)."""
    return [
        d
        for d in Duty.objects.filter(retired_at__isnull=True, scope=DutyScope.SERVICE)
        if "notice" not in d.applies
    ]


@transaction.atomic
def make_register(
    *,
    organisation: Organisation,
    obligations: int,
    today: dt.date,
    owners: list[User] | None = None,
    services_per_provider: int = 20,
    statuses: tuple[str, ...] | None = STATUS_CYCLE,
    due_spread: tuple[int, int] = (-400, 400),
    events_per_obligation: int = 0,
    name_prefix: str = "Bulk",
    past_cycles: int = 0,
    evidence_per_cycle: int = 0,
    field_history: bool = False,
    rolled_forward: bool = False,
) -> Register:
    """About `obligations` obligations over as many services as the catalogue's duties need,
    each with a current cycle due somewhere in `due_spread` days from today.

    For a register with years behind it (`make bench`): `past_cycles` gives obligations up to
    that many closed yearly cycles before the current one (0 to `past_cycles`, in turn), each
    opened and met in the events; `evidence_per_cycle` gives cycles up to that many evidence
    rows (files, links, a few purged tombstones, some expiring); `field_history` writes the
    django-simple-history rows the services would have (created, then changed, for
    obligations; created for evidence). With `rolled_forward`, the register is as the nightly
    sweep leaves it: a recurring duty's met cycle has already rolled forward to a new one (a
    register written all at once would have the sweep roll them one by one, with their
    events: 43 s of the first sweep at 100k).

    On PostgreSQL the rows travel by COPY (see `insert`)."""
    duties = service_duties()
    recurring = {d.pk for d in duties if (d.deadline or {}).get("recurrence")}
    per_service = len(duties)
    n_services = max(1, -(-obligations // per_service))
    existing = Service.objects.filter(provider__organisation=organisation).count()
    providers = Provider.objects.bulk_create(
        [
            Provider(organisation=organisation, name=f"{name_prefix} provider {existing + i}")
            for i in range(-(-n_services // services_per_provider))
        ]
    )
    services = Service.objects.bulk_create(
        [
            Service(
                provider=providers[i // services_per_provider],
                name=f"{name_prefix} service {existing + i}",
                user_to_user=True,
                uk_monthly_users=100_000 + i,
                children_likely_to_access=bool(i % 2),
            )
            for i in range(n_services)
        ]
    )
    now = timezone.now()
    rows: list[Obligation] = []
    for s_index, service in enumerate(services):
        for d_index, duty in enumerate(duties):
            if len(rows) >= obligations:
                break
            rows.append(
                Obligation(
                    provider_id=service.provider_id,
                    service=service,
                    duty=duty,
                    owner=owners[(s_index + d_index) % len(owners)] if owners else None,
                    why="Generated for a large register.",
                    notes=CHANGED_NOTES if field_history and len(rows) % 2 == 0 else "",
                )
            )
    created = insert(Obligation, rows)
    low, high = due_spread
    span = high - low + 1
    cycles = []
    for i, obligation in enumerate(created):
        status = statuses[i % len(statuses)] if statuses else CycleStatus.NOT_STARTED
        rolled = rolled_forward and status == CycleStatus.MET and obligation.duty_id in recurring
        if rolled:
            status = CycleStatus.NOT_STARTED
        closed = status in CLOSED_STATUSES
        cycles.append(
            ObligationCycle(
                obligation=obligation,
                period_start=today - dt.timedelta(days=30),
                due_date=today + dt.timedelta(days=low + (i * 37) % span),
                status=status,
                trigger=CycleTrigger.RECURRENCE if rolled else CycleTrigger.INITIAL,
                status_reason="Generated." if status == CycleStatus.NOT_APPLICABLE else "",
                closed_at=now if closed else None,
                next_reminder_at=now,
            )
        )
    insert(ObligationCycle, cycles)
    if past_cycles:
        cycles += _past_cycles(created, past_cycles, today)
    # Ordered by period alone: the default ordering joins obligations inside the subquery.
    latest = ObligationCycle.objects.filter(obligation=OuterRef("pk")).order_by("-period_start")
    Obligation.objects.filter(service__in=services).update(
        current_cycle=Subquery(latest.values("pk")[:1]),
        status=Subquery(latest.values("status")[:1]),
        due_date=Subquery(latest.values("due_date")[:1]),
    )
    if events_per_obligation:
        _events(created, events_per_obligation, now)
    if evidence_per_cycle:
        _evidence(cycles, evidence_per_cycle, owners or [], today, history=field_history)
    if field_history:
        _field_history(created, now)
    return Register(organisation, providers, services, len(created))


def _past_cycles(obligations: list[Obligation], most: int, today: dt.date) -> list[ObligationCycle]:
    """Closed yearly cycles before the current one, with the events that opened and met them."""
    from obligations.access.users import get_system_user

    actor = get_system_user()
    past = []
    for i, obligation in enumerate(obligations):
        for year in range(1, i % (most + 1) + 1):
            start = today - dt.timedelta(days=30 + 365 * year)
            closed = dt.datetime.combine(start + dt.timedelta(days=300), dt.time(10), tzinfo=dt.UTC)
            past.append(
                ObligationCycle(
                    obligation=obligation,
                    period_start=start,
                    due_date=start + dt.timedelta(days=335),
                    status=CycleStatus.MET,
                    trigger=CycleTrigger.RECURRENCE if year < most else CycleTrigger.INITIAL,
                    closed_at=closed,
                    next_reminder_at=None,
                )
            )
    insert(ObligationCycle, past)
    events = []
    for cycle in past:
        opened = dt.datetime.combine(cycle.period_start, dt.time(9), tzinfo=dt.UTC)
        common = {"obligation_id": cycle.obligation_id, "cycle": cycle, "actor": actor}
        events.append(
            Event(
                **common,
                kind=EventKind.CYCLE_OPENED,
                to_status=CycleStatus.NOT_STARTED,
                due_date=cycle.due_date,
                at=opened,
                reason="Generated history.",
                source=EventSource.TASK,
            )
        )
        events.append(
            Event(
                **common,
                kind=EventKind.STATUS,
                from_status=CycleStatus.READY_FOR_REVIEW,
                to_status=CycleStatus.MET,
                at=cycle.closed_at,
                reason="Reviewed and met.",
                source=EventSource.ADMIN,
            )
        )
    insert(Event, events)
    return past


CHANGED_NOTES = "Owner agreed at the quarterly review."
# A few stored files that many evidence rows share (storage names are content hashes, so
# equal content is one file), from 2 KB to 128 KB.
EVIDENCE_BLOBS = 8


def _blobs() -> list[tuple[str, int, str]]:
    """(storage name, size, SHA-256) of the shared evidence files, written if absent."""
    import hashlib

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    made = []
    for k in range(EVIDENCE_BLOBS):
        size = 2048 << (k % 7)
        data = (f"Evidence document {k}\n".encode() * (size // 16 + 1))[:size]
        sha = hashlib.sha256(data).hexdigest()
        name = f"evidence/{sha[:2]}/{sha}"
        if not default_storage.exists(name):
            default_storage.save(name, ContentFile(data))
        made.append((name, size, sha))
    return made


def _evidence(
    cycles: list[ObligationCycle],
    most: int,
    owners: list[User],
    today: dt.date,
    *,
    history: bool,
) -> None:
    """Up to `most` evidence rows per cycle (0 to `most`, in turn): mostly files, some links,
    one in twenty purged, some expiring soon; with the events that added them."""
    from obligations.access.users import get_system_user

    actor = get_system_user()
    people = owners or [actor]
    blobs = _blobs()
    rows = []
    for i, cycle in enumerate(cycles):
        for k in range((i + 1) % (most + 1)):
            n = i * most + k
            uploaded = dt.datetime.combine(
                cycle.period_start + dt.timedelta(days=7 + k), dt.time(11), tzinfo=dt.UTC
            )
            common: dict[str, Any] = {
                "cycle": cycle,
                "title": f"Evidence {n}",
                "uploaded_by": people[n % len(people)],
                "uploaded_at": uploaded,
                "expires_on": today + dt.timedelta(days=n % 120) if n % 5 == 0 else None,
            }
            if n % 20 == 7:
                name, size, sha = blobs[n % len(blobs)]
                rows.append(
                    Evidence(
                        **common,
                        kind=EvidenceKind.FILE,
                        original_name=f"policy-{n}.pdf",
                        content_type="application/pdf",
                        size=size,
                        sha256=sha,
                        purged_at=uploaded + dt.timedelta(days=30),
                        purged_by=actor,
                        purge_reason="Held personal data.",
                    )
                )
            elif n % 3 == 2:
                rows.append(
                    Evidence(**common, kind=EvidenceKind.LINK, url=f"https://docs.example/{n}")
                )
            else:
                name, size, sha = blobs[n % len(blobs)]
                rows.append(
                    Evidence(
                        **common,
                        kind=EvidenceKind.FILE,
                        file=name,
                        original_name=f"evidence-{n}.pdf",
                        content_type="application/pdf",
                        size=size,
                        sha256=sha,
                    )
                )
    insert(Evidence, rows)
    insert(
        Event,
        [
            Event(
                obligation_id=e.cycle.obligation_id,
                cycle=e.cycle,
                kind=EventKind.EVIDENCE_ADDED,
                actor=e.uploaded_by,
                at=e.uploaded_at,
                evidence=e,
                source=EventSource.ADMIN,
            )
            for e in rows
        ],
    )
    if history:
        _history(Evidence, rows, actor=actor, reason="Uploaded.")


def _field_history(obligations: list[Obligation], now: Any) -> None:
    """Each obligation's history row from when it was made, and for every other one (whose
    notes were written later) a row from that change."""
    from obligations.access.users import get_system_user

    actor = get_system_user()
    changed = [o for o in obligations if o.notes]
    for o in obligations:
        o.notes = ""
    _history(
        Obligation, obligations, actor=actor, reason="Created.", at=now - dt.timedelta(days=400)
    )
    for o in changed:
        o.notes = CHANGED_NOTES
    _history(
        Obligation,
        changed,
        actor=actor,
        reason="Notes.",
        at=now - dt.timedelta(days=100),
        kind="~",
    )


def _events(obligations: list[Obligation], per: int, now: Any) -> None:
    from obligations.access.users import get_system_user

    actor = get_system_user()
    insert(
        Event,
        [
            Event(
                obligation=o,
                kind=EventKind.STATUS if k else EventKind.CREATED,
                from_status=CycleStatus.NOT_STARTED if k else "",
                to_status=CycleStatus.IN_PROGRESS if k else "",
                actor=actor,
                at=now - dt.timedelta(days=per - k),
                reason="Generated history.",
                source=EventSource.COMMAND,
            )
            for o in obligations
            for k in range(per)
        ],
    )


def grower(
    organisation: Organisation, owners: list[User], *, events_per_obligation: int = 2
) -> Any:
    """A `grow(n)` for `assert_constant_queries`: tops the organisation's register up to n."""
    made = [0]

    def grow(n: int) -> None:
        make_register(
            organisation=organisation,
            obligations=n - made[0],
            today=dt.date(2026, 11, 24),
            owners=owners,
            events_per_obligation=events_per_obligation,
            name_prefix=f"Size{n}",
        )
        made[0] = n

    return grow


# --- How the rows are written ------------------------------------------------------------

# From this many rows, PostgreSQL gets them by COPY rather than INSERTs of 2,000 rows each:
# a million obligations come with about 15 million rows of history.
COPY_FROM = 1000


def insert(model: type[models.Model], objs: list[Any]) -> list[Any]:
    """`objs` written as bulk_create would (their primary keys set, auto_now dates filled),
    by COPY on PostgreSQL when there are many."""
    if connection.vendor != "postgresql" or len(objs) < COPY_FROM:
        return model._default_manager.bulk_create(objs, batch_size=2000)
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    fields = [f for f in meta.concrete_fields if f is not pk]
    # Those Django converts on the way in (a file's name, a date set on save); the rest go as
    # they are, and psycopg adapts them: no call to the field per row and column.
    converted = {
        f.attname
        for f in fields
        if isinstance(f, models.FileField)
        or getattr(f, "auto_now", False)
        or getattr(f, "auto_now_add", False)
    }
    with connection.cursor() as cursor:
        # The foreign keys are not checked row by row (a trigger per row and key, queued to
        # the commit): the rows are consistent by construction. Only a superuser (the bench)
        # may; the tests' role checks them as ever.
        cursor.execute("SELECT current_setting('is_superuser') = 'on'")
        if cursor.fetchone()[0]:
            cursor.execute("SET LOCAL session_replication_role = replica")
        # The ids taken from the sequence in one statement, as the app's next row will.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, pk.column, len(objs)],
        )
        ids = [n for (n,) in cursor.fetchall()]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in [pk, *fields])
        with cursor.cursor.copy(f"COPY {meta.db_table} ({columns}) FROM STDIN") as copy:
            for n, obj in zip(ids, objs, strict=True):
                obj.pk = n
                copy.write_row(
                    [
                        n,
                        *(
                            f.get_db_prep_save(f.pre_save(obj, True), connection)
                            if f.attname in converted
                            else getattr(obj, f.attname)
                            for f in fields
                        ),
                    ]
                )
                obj._state.adding = False
                obj._state.db = connection.alias
    return objs


def _history(
    model: type[models.Model],
    objs: list[Any],
    *,
    actor: User,
    reason: str,
    at: dt.datetime | None = None,
    kind: str = "+",
) -> None:
    """The django-simple-history rows the services would have written for `objs` (created,
    or with `kind` "~" changed), as its bulk_history_create builds them."""
    historical = model.history.model  # type: ignore[attr-defined]
    when = at or timezone.now()
    insert(
        historical,
        [
            historical(
                history_date=when,
                history_user=actor,
                history_change_reason=reason,
                history_type=kind,
                **{f.attname: _plain(getattr(obj, f.attname)) for f in historical.tracked_fields},
            )
            for obj in objs
        ],
    )


def _plain(value: Any) -> Any:
    """A stored file as its name: a history row keeps it as text."""
    return value.name if isinstance(value, FieldFile) else value
