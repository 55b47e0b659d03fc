"""The Technology Notice's stage table: what may follow what, and what a stage needs."""

from __future__ import annotations

from obligations.notices.models import NoticeStage

# The one table of a Technology Notice's stages: target -> the stages it can come from.
NOTICE_STAGES: dict[str, tuple[str, ...]] = {
    NoticeStage.WARNING: (NoticeStage.SKILLED_PERSON_REPORT,),
    NoticeStage.REPRESENTED: (NoticeStage.WARNING,),
    NoticeStage.CLOSED: (NoticeStage.WARNING, NoticeStage.REPRESENTED),
    NoticeStage.GIVEN: (NoticeStage.WARNING, NoticeStage.REPRESENTED),
    NoticeStage.IN_FORCE: (NoticeStage.GIVEN,),
    NoticeStage.EXPIRED: (NoticeStage.IN_FORCE,),
    NoticeStage.REVOKED: (NoticeStage.GIVEN, NoticeStage.IN_FORCE),
}


# What must be recorded on the notice before it can move to a stage.
STAGE_NEEDS: dict[str, tuple[str, ...]] = {
    NoticeStage.WARNING: ("warning_given_on", "representations_due"),
    NoticeStage.REPRESENTED: ("representations_submitted_on",),
    NoticeStage.GIVEN: ("given_on", "compliance_by"),
}


ENDED_STAGES: dict[str, str] = {
    NoticeStage.CLOSED: "closed without a notice",
    NoticeStage.EXPIRED: "expired",
    NoticeStage.REVOKED: "revoked",
}
