"""One organisation with people in each role and a service under the catalogue: the world the
tests that walk every write path and every change form act in (`world` fixture, conftest)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from obligations import models as m
from obligations import services
from tests.clock import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, UserFactory, applied_service
from tests.factories import member as add_member

SOURCE = m.EventSource.ADMIN


@dataclass
class World:
    org: m.Organisation
    provider: m.Provider
    service: m.Service
    people: dict[str, Any]

    def obligation(self, code: str = "U2U-RECORDS") -> m.Obligation:
        return self.service.obligations.select_related("current_cycle").get(duty__code=code)

    def started(self, code: str = "U2U-RECORDS") -> m.Obligation:
        ob = self.obligation(code)
        services.do_start(actor=self.people["casey"], cycle=ob.current_cycle, source=SOURCE)
        return self.obligation(code)

    def submitted(self, code: str = "U2U-RECORDS") -> m.Obligation:
        """Worked by casey up to review, so that anyone else may approve."""
        ob = self.started(code)
        services.add_evidence_link(
            actor=self.people["casey"],
            cycle=ob.current_cycle,
            url="https://wiki.test/records",
            title="Records",
            source=SOURCE,
        )
        services.do_submit_for_review(
            actor=self.people["casey"], cycle=ob.current_cycle, source=SOURCE
        )
        return self.obligation(code)

    def technology_notice(self) -> m.TechnologyNotice:
        return services.record_notice(
            actor=self.people["casey"],
            notice=m.TechnologyNotice(
                service=self.service,
                ofcom_reference="TN-1",
                skilled_report_on=TODAY - dt.timedelta(days=20),
                stage=m.NoticeStage.SKILLED_PERSON_REPORT,
                csea_private=True,
            ),
            source=SOURCE,
        )

    def ofcom_notice(self) -> m.OfcomNotice:
        return services.record_notice(
            actor=self.people["casey"],
            notice=m.OfcomNotice(
                service=self.service,
                kind=m.NoticeKind.INFORMATION,
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
        "ada": add_member(org, m.Role.ADMIN, username="ada"),
        "casey": add_member(org, username="casey"),
        "rita": add_member(org, username="rita"),
        "mona": add_member(org, m.Role.MANAGER, username="mona"),
        "root": UserFactory(username="root", is_superuser=True),
    }
    return World(org, provider, service, people)
