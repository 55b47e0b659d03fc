"""The gates an obligation must pass before it is met: its risk assessment rated in full and
every recommended Codes measure decided."""

from __future__ import annotations

from django.contrib.auth.models import User

from obligations.assessments.models import RiskAssessment
from obligations.assessments.selectors import (
    private_channel_gaps,
    undecided_measures,
    unrated_entries,
)
from obligations.register.models import ObligationCycle
from obligations.register.states import TransitionError


def check_assessment(actor: User, cycle: ObligationCycle) -> None:
    """A risk assessment duty's cycle is met only on a complete assessment, approved by
    someone other than its assessor."""
    if not cycle.obligation.duty.assessment_kind:
        return
    assessment = RiskAssessment.objects.filter(cycle=cycle).first()
    if assessment is None:
        raise TransitionError("It cannot be met without its risk assessment: start it first.")
    missing = unrated_entries(assessment)
    if missing:
        shown = "; ".join(missing[:12]) + (
            f"; and {len(missing) - 12} more" if len(missing) > 12 else ""
        )
        raise TransitionError(
            f"The risk assessment is incomplete: every harm kind needs a level and a rationale. "
            f"Missing: {shown}."
        )
    gaps = private_channel_gaps(assessment)
    if gaps:
        raise TransitionError(
            "The risk assessment does not yet cover private and end-to-end encrypted channels "
            f"where the catalogue requires it: {'; '.join(gaps)}."
        )
    if assessment.assessor_id == actor.pk:
        raise TransitionError("Four eyes: the assessor cannot approve their own risk assessment.")


def check_measures(cycle: ObligationCycle) -> None:
    """A duty that Codes measures serve is met only once every recommended measure has a
    current decision."""
    obligation = cycle.obligation
    if obligation.service is None:
        return
    undecided = undecided_measures(obligation.service, obligation.duty)
    if undecided:
        raise TransitionError(
            "It cannot be met while a recommended Codes measure has no decision: "
            f"{', '.join(undecided)}. Record each in the service's measures register."
        )
