"""One organisation with people in each role and a service under the catalogue: the world the
tests that walk every write path and every change form act in (`world` fixture, conftest)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from obligations.access.models import Organisation, Role
from obligations.notices.actions import record_notice
from obligations.notices.models import NoticeKind, NoticeStage, OfcomNotice, TechnologyNotice
from obligations.providers.models import Provider, Service
from obligations.register.evidence import add_evidence_link
from obligations.register.models import Obligation
from obligations.register.states import EventSource
from obligations.register.workflow import do_start, do_submit_for_review
from tests.clock import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, UserFactory, applied_service
from tests.factories import member as add_member

SOURCE = EventSource.ADMIN


@dataclass
class World:
    org: Organisation
    provider: Provider
    service: Service
    people: dict[str, Any]

    def obligation(self, code: str = "U2U-RECORDS") -> Obligation:
        return self.service.obligations.select_related("current_cycle").get(duty__code=code)

    def started(self, code: str = "U2U-RECORDS") -> Obligation:
        ob = self.obligation(code)
        do_start(actor=self.people["casey"], cycle=ob.current_cycle, source=SOURCE)
        return self.obligation(code)

    def submitted(self, code: str = "U2U-RECORDS") -> Obligation:
        """Worked by casey up to review, so that anyone else may approve."""
        ob = self.started(code)
        add_evidence_link(
            actor=self.people["casey"],
            cycle=ob.current_cycle,
            url="https://wiki.test/records",
            title="Records",
            source=SOURCE,
        )
        do_submit_for_review(actor=self.people["casey"], cycle=ob.current_cycle, source=SOURCE)
        return self.obligation(code)

    def technology_notice(self) -> TechnologyNotice:
        return record_notice(
            actor=self.people["casey"],
            notice=TechnologyNotice(
                service=self.service,
                ofcom_reference="TN-1",
                skilled_report_on=TODAY - dt.timedelta(days=20),
                stage=NoticeStage.SKILLED_PERSON_REPORT,
                csea_private=True,
            ),
            source=SOURCE,
        )

    def ofcom_notice(self) -> OfcomNotice:
        return record_notice(
            actor=self.people["casey"],
            notice=OfcomNotice(
                service=self.service,
                kind=NoticeKind.INFORMATION,
                given_on=TODAY,
                respond_by=TODAY + dt.timedelta(days=28),
            ),
            source=SOURCE,
        )


def make_world() -> World:
    org = OrganisationFactory(name="Ours")
    provider = ProviderFactory(organisation=org, name="Northwind")
    service = applied_service(provider=provider, name="Chat")
    people = {
        "ada": add_member(org, Role.ADMIN, username="ada"),
        "casey": add_member(org, username="casey"),
        "rita": add_member(org, username="rita"),
        "mona": add_member(org, Role.MANAGER, username="mona"),
        "root": UserFactory(username="root", is_superuser=True),
    }
    return World(org, provider, service, people)
