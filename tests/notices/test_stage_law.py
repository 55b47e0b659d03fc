"""The Technology Notice's stages as Part 7 Chapter 5 orders them, stated here independently of
the table in obligations/notices/stages.py (test_notices.py derives its forbidden moves from
that table, so it cannot notice an allowed move the table lost). `make mutation` runs these
against every mutant of the table (issue 31).
"""

from obligations.notices.models import NoticeStage as S
from obligations.notices.stages import ENDED_STAGES, NOTICE_STAGES, STAGE_NEEDS

# (from, to): why the Act allows the move.
MOVES = {
    (S.SKILLED_PERSON_REPORT, S.WARNING): "s.123 warning notice, after the s.122 report",
    (S.WARNING, S.REPRESENTED): "s.123: representations within the warning notice's window",
    (S.WARNING, S.CLOSED): "Ofcom decide to give no notice, with no representations made",
    (S.REPRESENTED, S.CLOSED): "Ofcom decide to give no notice, having heard the provider",
    (S.WARNING, S.GIVEN): "s.125 notice given once the representations window has run",
    (S.REPRESENTED, S.GIVEN): "s.125 notice given after the representations",
    (S.GIVEN, S.IN_FORCE): "the compliance period (s.125(6)(e)) has run",
    (S.IN_FORCE, S.EXPIRED): "its period ends (at most 36 months, s.125(7))",
    (S.GIVEN, S.REVOKED): "revoked before it bites (s.125(11))",
    (S.IN_FORCE, S.REVOKED): "revoked while in force (s.125(11); s.126 for non-compliance)",
}


def test_the_stage_table_allows_exactly_the_moves_the_act_provides_for():
    allowed = {(source, target) for target, sources in NOTICE_STAGES.items() for source in sources}
    assert allowed == set(MOVES)


def test_each_stage_needs_the_dates_the_act_attaches_to_it():
    assert STAGE_NEEDS == {
        # s.123: a warning notice gives a window for representations.
        S.WARNING: ("warning_given_on", "representations_due"),
        S.REPRESENTED: ("representations_submitted_on",),
        # s.125(6)(e): a notice states the period for compliance.
        S.GIVEN: ("given_on", "compliance_by"),
    }


def test_the_three_ends_of_a_notice_in_words():
    assert ENDED_STAGES == {
        S.CLOSED: "closed without a notice",
        S.EXPIRED: "expired",
        S.REVOKED: "revoked",
    }
