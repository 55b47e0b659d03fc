"""Import an existing register from a spreadsheet (CSV or XLSX).

Reading, validating and planning only read the database. Writing goes through the service
functions alone, as the person importing and with source "import", so every change has its
event (or field history) like a change made by hand, in the name of whoever made it. A dry
run makes the same calls and rolls them back, so it reports what an import would do.

A row never creates an obligation: it finds the obligation by (service, duty code) and
brings it in line with the row. Blank cells leave the register as it is, and a row that
matches the register changes nothing, so importing the same file twice is safe.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models, transaction
from django.db.models import Q

from obligations.access.models import Membership, Organisation, Role
from obligations.access.selectors import REVIEWER_ROLES, may_transition
from obligations.catalogue.models import Duty, DutyScope
from obligations.dates import RANGE_TEXT, is_plausible
from obligations.inputs import one_line
from obligations.providers.models import Service
from obligations.register.actions import (
    assign_owner,
    due_date_refusal,
    set_due_date,
    update_obligation_details,
)
from obligations.register.evidence import add_evidence_link
from obligations.register.import_files import (
    STATUS_NAMES,
    Cell,
    Table,
    cell_text,
    column_label,
    normalise,
)
from obligations.register.models import Evidence, EvidenceKind, Obligation, ObligationCycle
from obligations.register.states import CLOSED_STATUSES, CycleStatus, EventSource, TransitionError
from obligations.register.workflow import TRANSITIONS, check_can_be_met, transition_to

SOURCE = EventSource.IMPORT


# Statuses a file may ask for go forward along the workflow; sending back is a reviewer's act.
FORWARD: tuple[str, ...] = (CycleStatus.IN_PROGRESS, CycleStatus.READY_FOR_REVIEW, CycleStatus.MET)


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


UK_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


@dataclass
class RowOutcome:
    """What one row does: refused (with the reasons), updated (with the changes) or
    unchanged. Warnings say where the register was left as it is, and why."""

    row: int
    external_ref: str
    service: str
    duty: str
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    written: bool = False

    @property
    def action(self) -> str:
        if self.errors:
            return "refused"
        return "updated" if self.changes else "unchanged"

    @property
    def label(self) -> str:
        if self.action == "updated" and not self.written:
            return "would update"
        return self.action

    @property
    def details(self) -> str:
        return "; ".join([*self.errors, *self.changes, *self.warnings])


@dataclass
class ImportReport:
    filename: str
    organisation: str
    dry_run: bool
    ignored_columns: list[str]
    rows: list[RowOutcome]
    written: bool = False

    def count(self, action: str) -> int:
        return sum(1 for row in self.rows if row.action == action)

    @property
    def refused(self) -> int:
        return self.count("refused")

    def summary(self) -> str:
        counts = (
            f"{self.count('updated')} row(s) {'updated' if self.written else 'to update'}, "
            f"{self.count('unchanged')} unchanged, {self.refused} refused"
        )
        if self.dry_run:
            return f"Dry run of {self.filename}: {counts}. Nothing was written."
        if not self.written:
            return (
                f"Nothing was written: {counts}. Correct the refused rows, or import the good "
                "rows only."
            )
        return f"Imported {self.filename} into {self.organisation}: {counts}."

    def lines(self) -> Iterator[str]:
        if self.ignored_columns:
            yield f"Ignored columns: {', '.join(self.ignored_columns)}"
        for row in self.rows:
            # One line a row, whatever a cell of the file holds.
            where = one_line(f"{row.service or '?'} / {row.duty or '?'}")
            yield f"row {row.row} {one_line(row.external_ref) or '-'} ({where}): {row.label}" + (
                f": {one_line(row.details)}" if row.details else ""
            )


@dataclass
class RowPlan:
    """The service calls one row needs; None and empty leave a thing as it is."""

    obligation: Obligation
    cycle: ObligationCycle
    provenance: str
    start: str
    external_ref: str | None = None
    notes: str | None = None
    owner: User | None = None
    due: dt.date | None = None
    evidence_url: str | None = None
    path: list[str] = field(default_factory=list)
    # Who the file says should approve a "met": asked to, never approving in the import.
    approver: User | None = None
    not_applicable_reason: str = ""


@dataclass
class ImportPlan:
    organisation: Organisation
    report: ImportReport
    rows: list[tuple[RowOutcome, RowPlan]]


@dataclass
class ImportContext:
    """The organisation's register, read once for the whole file."""

    organisation: Organisation
    services: dict[str, list[Service]]
    duties: dict[str, Duty]
    # (service id, or None for the provider's own obligations; provider id; duty id)
    obligations: dict[tuple[int | None, int, int], Obligation]
    refs: dict[tuple[int, str], Obligation]
    members: dict[str, list[Membership]]
    evidence_urls: dict[int, set[str]]

    @classmethod
    def load(cls, organisation: Organisation) -> ImportContext:
        in_org = Q(provider__organisation=organisation)
        obligations = list(
            Obligation.objects.filter(in_org).select_related(
                "provider", "service", "duty", "owner", "current_cycle"
            )
        )
        services_by_name: dict[str, list[Service]] = {}
        for service in Service.objects.filter(provider__organisation=organisation):
            services_by_name.setdefault(service.name.casefold(), []).append(service)
        members: dict[str, list[Membership]] = {}
        memberships = (
            Membership.objects.active()
            .filter(organisation=organisation, user__is_active=True)
            .exclude(user__email="")
            .select_related("user")
        )
        for membership in memberships:
            members.setdefault(membership.user.email.casefold(), []).append(membership)
        evidence_urls: dict[int, set[str]] = {}
        links = Evidence.objects.filter(
            kind=EvidenceKind.LINK,
            cycle__in=Obligation.objects.filter(in_org).values("current_cycle"),
        ).values_list("cycle_id", "url")
        for cycle_id, url in links:
            evidence_urls.setdefault(cycle_id, set()).add(url)
        return cls(
            organisation=organisation,
            services=services_by_name,
            duties={d.code: d for d in Duty.objects.all()},
            obligations={(o.service_id, o.provider_id, o.duty_id): o for o in obligations},
            refs={(o.provider_id, o.external_ref): o for o in obligations if o.external_ref},
            members=members,
            evidence_urls=evidence_urls,
        )

    def member(self, email: str, what: str, errors: list[str]) -> Membership | None:
        found = self.members.get(email.casefold(), [])
        if len(found) == 1:
            return found[0]
        if found:
            errors.append(f"{len(found)} members share the {what} e-mail {email}")
        else:
            errors.append(f"the {what} e-mail {email} is not a member of {self.organisation}")
        return None


def plan_import(
    table: Table, *, organisation: Organisation, filename: str, dry_run: bool
) -> ImportPlan:
    """Validate every row against the register and work out the writes it needs (reads only)."""
    register = ImportContext.load(organisation)
    refs_seen: dict[str, int] = {}
    obligations_seen: dict[int, int] = {}
    report = ImportReport(
        filename=filename,
        organisation=str(organisation),
        dry_run=dry_run,
        ignored_columns=table.ignored_columns,
        rows=[],
    )
    plans = []
    for number, cells in table.rows:
        values = {
            name: cell_text(cells[i]) if i < len(cells) else "" for name, i in table.columns.items()
        }
        due_cell = cells[table.columns["due"]] if values.get("due") else None
        outcome = RowOutcome(
            row=number,
            external_ref=values["external_ref"],
            service=values["service"],
            duty=values["duty"].upper(),
        )
        report.rows.append(outcome)
        obligation = _find_obligation(register, outcome, refs_seen, obligations_seen)
        fields = _check_fields(register, values, due_cell, outcome.errors)
        if obligation is None or outcome.errors:
            continue
        provenance = f"Imported from {filename} row {number}"
        plan = _plan_row(register, obligation, fields, outcome, provenance)
        if plan is not None:
            plans.append((outcome, plan))
    return ImportPlan(organisation=organisation, report=report, rows=plans)


def _field_errors(name: str, value: str) -> list[str]:
    """What the obligation's own field (its length, one line) says of a value from the file:
    the rules the admin and the API apply, not a copy of them."""
    field = Obligation._meta.get_field(name)
    assert isinstance(field, models.Field)
    try:
        field.clean(value, None)
    except ValidationError as exc:
        return exc.messages
    return []


def _find_obligation(
    register: ImportContext,
    outcome: RowOutcome,
    refs_seen: dict[str, int],
    obligations_seen: dict[int, int],
) -> Obligation | None:
    errors, ref, code = outcome.errors, outcome.external_ref, outcome.duty
    refused = _field_errors("external_ref", ref) if ref else []
    if not ref:
        errors.append("no external reference")
    elif refused:
        errors.append(f"the external reference is refused: {' '.join(refused)}")
    elif ref in refs_seen:
        errors.append(f"external reference {ref} is also on row {refs_seen[ref]}")
    else:
        refs_seen[ref] = outcome.row
    service = None
    if not outcome.service:
        errors.append("no service")
    else:
        matches = register.services.get(outcome.service.casefold(), [])
        if len(matches) == 1:
            service = matches[0]
        elif matches:
            errors.append(f"{len(matches)} services are called “{outcome.service}”")
        else:
            errors.append(f"unknown service “{outcome.service}” in {register.organisation}")
    duty = register.duties.get(code)
    if not code:
        errors.append("no duty code")
    elif duty is None:
        errors.append(f"duty {code} is not in the catalogue")
    elif duty.retired_at is not None:
        errors.append(f"duty {code} was retired from the catalogue")
    if service is None or duty is None or duty.retired_at is not None:
        return None
    # A provider-wide duty (fees) is found through any of the provider's services.
    service_key = None if duty.scope == DutyScope.PROVIDER else service.pk
    obligation = register.obligations.get((service_key, service.provider_id, duty.pk))
    if obligation is None:
        errors.append(f"duty {code} does not apply to {service}: it has no obligation")
        return None
    if not obligation.applicable:
        errors.append(
            f"duty {code} no longer applies to {service}: {obligation.not_applicable_reason}"
        )
    elif obligation.pk in obligations_seen:
        errors.append(f"row {obligations_seen[obligation.pk]} already imports {service} / {code}")
    else:
        obligations_seen[obligation.pk] = outcome.row
    holder = register.refs.get((service.provider_id, ref))
    if holder is not None and holder.pk != obligation.pk:
        errors.append(
            f"external reference {ref} is already used by {holder.duty.code} of "
            f"{holder.service or holder.provider}"
        )
    return obligation


@dataclass
class _Fields:
    owner: User | None
    approver: User | None
    status: str | None
    due: dt.date | None
    evidence_url: str
    notes: str


def _check_fields(
    register: ImportContext, values: dict[str, str], due_cell: Cell | None, errors: list[str]
) -> _Fields:
    owner = approver = None
    if values.get("owner"):
        membership = register.member(values["owner"], "owner", errors)
        owner = membership.user if membership else None
    if values.get("approver"):
        membership = register.member(values["approver"], "approver", errors)
        if membership is not None and membership.role not in REVIEWER_ROLES:
            roles = ", ".join(str(Role(role).label).lower() for role in REVIEWER_ROLES)
            errors.append(
                f"the approver {values['approver']} has the role "
                f"{membership.get_role_display().lower()}; only these roles approve: {roles}"
            )
        elif membership is not None:
            approver = membership.user
    notes = values.get("notes", "")
    status = None
    if values.get("status"):
        status = STATUS_NAMES.get(normalise(values["status"]))
        if status is None:
            names = ", ".join(
                column_label(s) for s in CycleStatus.values if s != CycleStatus.SENT_BACK
            )
            errors.append(f"unknown status “{values['status']}” (use one of: {names})")
        elif status == CycleStatus.SENT_BACK:
            errors.append("“sent back” cannot be imported: a reviewer sends work back")
        elif status == CycleStatus.NOT_APPLICABLE and not notes:
            errors.append("“not applicable” needs a reason: give it in the notes")
    due = None
    if due_cell:
        due = _date(due_cell)
        if due is None:
            errors.append(
                f"due date “{cell_text(due_cell)}” is not a date (YYYY-MM-DD or DD/MM/YYYY)"
            )
        elif not is_plausible(due):
            errors.append(f"due date “{cell_text(due_cell)}” is out of range: use {RANGE_TEXT}")
            due = None
    url = values.get("evidence", "")
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
            if len(url) > 1000:
                raise ValidationError("too long")
        except ValidationError:
            errors.append(f"evidence link “{url[:80]}” is not a valid http(s) URL")
    return _Fields(owner, approver, status, due, url, notes)


def _date(value: Cell) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        if ISO_DATE.fullmatch(value):
            return dt.date.fromisoformat(value)
        if match := UK_DATE.fullmatch(value):  # UK spreadsheets write day first
            day, month, year = (int(part) for part in match.groups())
            return dt.date(year, month, day)
    except ValueError:
        pass
    return None


def _plan_row(
    register: ImportContext,
    obligation: Obligation,
    fields: _Fields,
    outcome: RowOutcome,
    provenance: str,
) -> RowPlan | None:
    cycle = obligation.current_cycle
    if cycle is None:
        outcome.errors.append("the obligation has no cycle")
        return None
    changes, warnings = outcome.changes, outcome.warnings
    plan = RowPlan(obligation=obligation, cycle=cycle, provenance=provenance, start=cycle.status)
    if outcome.external_ref != obligation.external_ref:
        plan.external_ref = outcome.external_ref
        changes.append(
            f"external reference {obligation.external_ref or 'none'} → {plan.external_ref}"
        )
    if fields.notes and fields.notes != obligation.notes:
        plan.notes = fields.notes
        changes.append("notes updated")
    if fields.owner is not None and fields.owner.pk != obligation.owner_id:
        plan.owner = fields.owner
        changes.append(f"owner {obligation.owner or 'nobody'} → {fields.owner}")
        if plan.start == CycleStatus.READY_FOR_REVIEW:
            # assign_owner sends work under review back to in progress (four eyes).
            plan.start = CycleStatus.IN_PROGRESS
            changes.append("back to in progress: the owner changed during review")
    if fields.due is not None and fields.due != cycle.due_date:
        refusal = due_date_refusal(obligation, fields.due)
        if cycle.is_closed:
            warnings.append(f"due date left at {cycle.due_date or 'none'}: the cycle is closed")
        elif refusal:
            outcome.errors.append(f"due date {fields.due} is refused: {refusal}")
            return None
        else:
            plan.due = fields.due
            changes.append(f"due {cycle.due_date or 'none'} → {fields.due}")
    url = fields.evidence_url
    if url and url not in register.evidence_urls.get(cycle.pk, set()):
        if cycle.is_closed:
            warnings.append("evidence link not added: the cycle is closed")
        else:
            plan.evidence_url = url
            changes.append("evidence link added")
    if fields.status is not None:
        _plan_status(plan, fields, outcome)
    return plan if outcome.changes or plan.path else None


def _plan_status(plan: RowPlan, fields: _Fields, outcome: RowOutcome) -> None:
    assert fields.status is not None
    path = _path(plan.start, fields.status)
    if path is None:
        why = "the cycle is closed" if plan.start in CLOSED_STATUSES else "it is further on"
        outcome.warnings.append(
            f"left at {column_label(plan.start)}: "
            f"the file says {column_label(fields.status)}, and {why}"
        )
        return
    plan.path = path
    plan.approver = fields.approver
    if fields.status == CycleStatus.NOT_APPLICABLE:
        plan.not_applicable_reason = fields.notes


def _path(current: str, target: str) -> list[str] | None:
    """The statuses to move through, along the workflow's own transitions, from `current` to
    `target`; None when the workflow cannot get there (the file is behind the register)."""
    if current == target:
        return []
    if target == CycleStatus.NOT_APPLICABLE:
        return [target] if current in TRANSITIONS[target][0] else None
    paths: dict[str, list[str]] = {current: []}
    queue = deque([current])
    while queue:
        here = queue.popleft()
        for step in FORWARD:
            if step not in paths and here in TRANSITIONS[step][0]:
                paths[step] = [*paths[here], step]
                queue.append(step)
    return paths.get(target)


def _status_change(start: str, path: list[str], actor: User) -> str:
    text = " → ".join(column_label(status) for status in [start, *path])
    if path and path[-1] == CycleStatus.MET:
        text += f" (approved by {actor.get_username()})"
    return f"status {text}"


def _write(plan: ImportPlan, *, actor: User) -> None:
    """Carry out the plan. Every call acts as `actor`: an import never writes in anyone
    else's name, so a "met" is approved only when the importer may approve it themself."""
    may_approve = may_transition(actor, plan.organisation.pk, CycleStatus.MET)
    for outcome, row in plan.rows:
        _write_row(outcome, row, actor, may_approve)


def _write_row(outcome: RowOutcome, row: RowPlan, actor: User, may_approve: bool) -> None:
    obligation, cycle = row.obligation, row.cycle
    if row.external_ref is not None or row.notes is not None:
        update_obligation_details(
            actor=actor,
            obligation=obligation,
            notes=row.notes,
            external_ref=row.external_ref,
            reason=row.provenance,
            source=SOURCE,
        )
    if row.owner is not None:
        assign_owner(actor=actor, obligation=obligation, owner=row.owner, source=SOURCE)
    if row.due is not None:
        set_due_date(actor=actor, cycle=cycle, due=row.due, reason=row.provenance, source=SOURCE)
    if row.evidence_url is not None:
        title = row.evidence_url
        add_evidence_link(
            actor=actor,
            cycle=cycle,
            url=row.evidence_url,
            title=title if len(title) <= 200 else f"{title[:199]}…",
            source=SOURCE,
        )
    moved: list[str] = []
    for status in row.path:
        # The file's approver is who should approve; the importer approves only when the
        # file names them (or nobody) and the workflow lets them.
        if status == CycleStatus.MET and not (may_approve and row.approver in (None, actor)):
            outcome.warnings.append(_waiting(row, bool(moved), ""))
            break
        try:
            cycle = transition_to(
                actor=actor,
                cycle=cycle,
                to=status,
                source=SOURCE,
                reason=row.not_applicable_reason
                if status == CycleStatus.NOT_APPLICABLE
                else row.provenance,
            )
        except TransitionError as exc:
            if status == CycleStatus.MET:
                why = f"{actor.get_username()} cannot approve it: {exc}"
                outcome.warnings.append(_waiting(row, bool(moved), why))
            else:  # someone else's change since the plan was made
                cycle.refresh_from_db(fields=["status"])
                outcome.warnings.append(f"left at {column_label(cycle.status)}: {exc}")
            break
        moved.append(status)
    if moved:
        outcome.changes.append(_status_change(row.start, moved, actor))


def _waiting(row: RowPlan, moved: bool, why: str) -> str:
    """Where a "met" the importer did not approve is left, and whose approval it waits for:
    the file's approver, when the workflow would let them approve it as it now stands."""
    who, reasons = "a reviewer", [why] if why else []
    if row.approver is not None and not why:
        cycle = ObligationCycle.objects.select_related("obligation").get(pk=row.cycle.pk)
        try:
            check_can_be_met(row.approver, cycle)
        except TransitionError as exc:
            reasons.append(f"{row.approver.email} cannot approve it: {exc}")
        else:
            who = row.approver.email
    where = "lands" if moved else "left"
    return "; ".join(
        [f"{where} at ready for review: waiting for {who} to approve in the tracker", *reasons]
    )


def run_import(
    *,
    actor: User,
    organisation: Organisation,
    table: Table,
    filename: str,
    dry_run: bool,
    import_good_rows: bool,
) -> ImportReport:
    """Plan every row and write in one transaction: all rows, or (when asked) the good ones.
    A dry run, or a file with refused rows, makes the very same service calls and rolls them
    back, so its report is what the workflow's own rules would do, and nothing is kept."""
    with transaction.atomic():
        plan = plan_import(table, organisation=organisation, filename=filename, dry_run=dry_run)
        _write(plan, actor=actor)
        if dry_run or (plan.report.refused and not import_good_rows):
            transaction.set_rollback(True)
        else:
            plan.report.written = True
            for outcome, _ in plan.rows:
                outcome.written = True
    return plan.report
