"""Evidence: files hashed as they arrive, links, and purging with a record of who purged."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from obligations.access.models import Role
from obligations.access.selectors import active_memberships, organisation_of
from obligations.dates import check_plausible_dates
from obligations.register.cycles import recheck_reminders
from obligations.register.events import record_event
from obligations.register.models import Evidence, EvidenceKind, ObligationCycle
from obligations.register.states import EventKind, TransitionError
from obligations.register.uploads import check_and_hash


@transaction.atomic
def add_evidence_file(
    *,
    actor: User,
    cycle: ObligationCycle,
    uploaded: UploadedFile,
    title: str,
    source: str,
    expires_on: dt.date | None = None,
    supersedes: Evidence | None = None,
) -> Evidence:
    """Store a file as evidence; refused (EvidenceRefused) before anything is written."""
    check_plausible_dates(expires_on=expires_on)
    sha256, content_type, size = check_and_hash(uploaded)
    evidence = Evidence(
        cycle=cycle,
        kind=EvidenceKind.FILE,
        title=title or (uploaded.name or "file"),
        original_name=(uploaded.name or "")[:255],
        content_type=content_type,
        size=size,
        sha256=sha256,
        uploaded_by=actor,
        uploaded_at=timezone.now(),
        expires_on=expires_on,
        supersedes=supersedes,
    )
    evidence.file.save(uploaded.name or sha256, uploaded, save=False)
    try:
        evidence.save()
    except Exception:
        evidence.file.delete(save=False)
        raise
    record_event(
        actor=actor,
        obligation=cycle.obligation,
        cycle=cycle,
        kind=EventKind.EVIDENCE_ADDED,
        source=source,
        evidence=evidence,
        reason=f"{evidence.title} (sha256 {sha256})",
    )
    recheck_reminders(cycle)
    return evidence


@transaction.atomic
def add_evidence_link(
    *,
    actor: User,
    cycle: ObligationCycle,
    url: str,
    title: str,
    source: str,
    expires_on: dt.date | None = None,
    supersedes: Evidence | None = None,
) -> Evidence:
    URLValidator(schemes=["http", "https"])(url)
    check_plausible_dates(expires_on=expires_on)
    evidence = Evidence.objects.create(
        cycle=cycle,
        kind=EvidenceKind.LINK,
        title=title or url,
        url=url,
        uploaded_by=actor,
        uploaded_at=timezone.now(),
        expires_on=expires_on,
        supersedes=supersedes,
    )
    record_event(
        actor=actor,
        obligation=cycle.obligation,
        cycle=cycle,
        kind=EventKind.EVIDENCE_ADDED,
        source=source,
        evidence=evidence,
        reason=url,
    )
    recheck_reminders(cycle)
    return evidence


@transaction.atomic
def purge_evidence(*, actor: User, evidence: Evidence, reason: str, source: str) -> None:
    """Destroy the file (illegal material, retention limits); keep a tombstone."""
    reason = (reason or "").strip()
    if not reason:
        raise TransitionError("A purge needs a reason.")
    organisation_id = organisation_of(evidence.cycle)
    if (
        not active_memberships(actor, (Role.ADMIN,))
        .filter(organisation_id=organisation_id)
        .exists()
    ):
        raise TransitionError("Only an organisation admin can purge evidence.")
    if evidence.purged_at is not None:
        raise TransitionError("This evidence was already purged.")
    stored = evidence.file.name
    evidence.file = None  # type: ignore[assignment]
    evidence.purged_at, evidence.purged_by, evidence.purge_reason = timezone.now(), actor, reason
    evidence.save()
    record_event(
        actor=actor,
        obligation=evidence.cycle.obligation,
        cycle=evidence.cycle,
        kind=EventKind.EVIDENCE_PURGED,
        source=source,
        evidence=evidence,
        reason=f"{reason} (sha256 {evidence.sha256} kept)",
    )
    recheck_reminders(evidence.cycle)
    if stored:
        storage = Evidence._meta.get_field("file").storage  # type: ignore[attr-defined]
        transaction.on_commit(lambda: storage.delete(stored))
