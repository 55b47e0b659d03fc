"""Demo data: one organisation with two providers and four services, and a second
organisation whose data the first must never see. Idempotent."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from obligations.access.actions import add_member
from obligations.access.models import Organisation, Role
from obligations.access.selectors import active_memberships
from obligations.access.users import get_system_user
from obligations.assessments.actions import (
    decide_measure,
    rate_entry,
    start_assessment,
    update_assessment_notes,
)
from obligations.assessments.models import MeasureDecisionKind, RiskAssessment
from obligations.catalogue.models import CodeMeasure, Duty, Feature, RegisterCategory, RiskFactor
from obligations.dates import london_today
from obligations.notices.actions import move_technology_notice, record_notice
from obligations.notices.models import (
    NoticeKind,
    NoticeStage,
    OfcomNotice,
    TechnologyNotice,
    TechnologyRequirement,
)
from obligations.providers.models import Provider, RevenueBasis, RevenueKind, RevenuePeriod, Service
from obligations.register.actions import assign_owner, set_due_date
from obligations.register.apply import apply_catalogue
from obligations.register.evidence import add_evidence_link
from obligations.register.models import Evidence, Obligation
from obligations.register.states import EventSource

DEMO_PASSWORD = "demo-osa-2026"
DEMO_USERS = (
    ("compliance", "Casey", "Compliance", Role.COMPLIANCE),
    ("reviewer", "Robin", "Reviewer", Role.COMPLIANCE),
    ("manager", "Morgan", "Manager", Role.MANAGER),
    ("auditor", "Avery", "Auditor", Role.AUDITOR),
)
SERVICES: tuple[tuple[Any, ...], ...] = (
    # provider, name, u2u, search, categories, users, children, features
    (
        "Northwind Social Ltd",
        "Northwind Social",
        True,
        False,
        ["1"],
        41_000_000,
        True,
        [
            "direct_messaging",
            "e2ee_messaging",
            "recommender",
            "forwarding",
            "livestreaming",
            "advertising",
        ],
    ),
    (
        "Northwind Social Ltd",
        "Northwind Chat",
        True,
        False,
        ["2B"],
        4_200_000,
        False,
        ["direct_messaging", "e2ee_messaging"],
    ),
    (
        "Northwind Search plc",
        "Northwind Search",
        False,
        True,
        ["2A"],
        9_500_000,
        None,
        ["advertising"],
    ),
    ("Northwind Search plc", "Northwind Forum", True, True, [], 250_000, False, ["file_sharing"]),
)
REVENUE = (
    ("Northwind Social Ltd", 2024, "2500000000.00"),
    ("Northwind Social Ltd", 2025, "2700000000.00"),
    ("Northwind Search plc", 2024, "120000000.00"),
    ("Northwind Search plc", 2025, "260000000.00"),
)
# The demo's illegal content ratings for a large social network with messaging (likelihood,
# impact); kinds not listed are low likelihood, medium impact.
DEMO_RATINGS = {
    "terrorism": ("medium", "high"),
    "csea_grooming": ("medium", "high"),
    "csea_image": ("medium", "high"),
    "csea_urls": ("low", "high"),
    "hate": ("high", "medium"),
    "harassment": ("high", "medium"),
    "fraud": ("medium", "medium"),
    "intimate_image_abuse": ("medium", "high"),
}
DEMO_FACTORS = ("social_media", "child_users", "direct_messaging", "livestreaming", "recommender")
# Its messaging is end-to-end encrypted: the CSEA rows say how that risk was assessed.
DEMO_PRIVATE_CHANNELS = (
    "Encrypted chats are not scanned: assessed from user and trusted-flagger reports made "
    "inside chats, account signals (adult accounts contacting many unconnected child accounts, "
    "rapid contact churn), NCMEC and NCA referrals naming our service, and Ofcom's Risk Profile "
    "for encrypted messaging."
)
# Days from today for the demo's spread of deadlines: overdue, 1, 7 and 30 days, later.
DUE_OFFSETS = {
    "Northwind Social": {
        "U2U-ILLEGAL-RA": -12,
        "U2U-CHILD-RA": 1,
        "CAA": 7,
        "U2U-ILLEGAL-SAFETY": 30,
        "U2U-RECORDS": 120,
    },
    "Northwind Chat": {"U2U-ILLEGAL-RA": 7, "CAA": -3, "U2U-RECORDS": 30},
    "Northwind Search": {"SEARCH-ILLEGAL-RA": 1, "SEARCH-CHILD-RA": 30, "CAA": -30},
    "Northwind Forum": {"U2U-ILLEGAL-RA": 90, "SEARCH-ILLEGAL-RA": 60},
}


def _join(system: Any, organisation: Organisation, user: Any, role: str) -> None:
    """A demo member, once: run again, the command leaves memberships as they are."""
    if not active_memberships(user).filter(organisation=organisation).exists():
        add_member(actor=system, organisation=organisation, user=user, role=role)


class Command(BaseCommand):
    help = "Load demo organisations, users, providers and services (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        if not Duty.objects.exists():
            raise CommandError("No catalogue is loaded: run `python manage.py load_catalogue`.")
        system = get_system_user()
        source = EventSource.COMMAND
        today = london_today()
        org, _ = Organisation.objects.get_or_create(name="Northwind Media Group")
        users = {}
        User = get_user_model()
        for username, first, last, role in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@northwind.example",
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            _join(system, org, user, role)
            users[username] = user
        providers = {}
        for name in dict.fromkeys(s[0] for s in SERVICES):
            providers[name], _ = Provider.objects.get_or_create(
                organisation=org, name=name, defaults={"legal_name": name, "country": "UK"}
            )
        # Calendar-year accounting periods: each is also a fees qualifying period. Northwind
        # Search crosses the fees threshold in 2025, so it must notify for 2027/28 (s.83(1)).
        for provider, year, amount in REVENUE:
            RevenuePeriod.objects.get_or_create(
                provider=providers[provider],
                kind=RevenueKind.ACCOUNTING,
                start=dt.date(year, 1, 1),
                defaults={
                    "end": dt.date(year, 12, 31),
                    "amount_gbp": Decimal(amount),
                    "basis": RevenueBasis.AUDITED,
                },
            )
        for provider, name, u2u, search, cats, n_users, children, features in SERVICES:
            service, created = Service.objects.get_or_create(
                provider=providers[provider],
                name=name,
                defaults={
                    "user_to_user": u2u,
                    "search": search,
                    "uk_monthly_users": n_users,
                    "children_likely_to_access": children,
                    "launch_date": dt.date(2019, 5, 1),
                },
            )
            if created:
                service.categories.set(RegisterCategory.objects.filter(code__in=cats))
                service.features.set(Feature.objects.filter(code__in=features))
            apply_catalogue(actor=system, service=service, source=source)
            if not created:
                continue
            provider_wide = Obligation.objects.filter(
                provider=service.provider, service__isnull=True, owner__isnull=True
            )
            for obligation in provider_wide.select_related("current_cycle"):
                assign_owner(
                    actor=system, obligation=obligation, owner=users["compliance"], source=source
                )
            for obligation in service.obligations.select_related("duty", "current_cycle"):
                assign_owner(
                    actor=system, obligation=obligation, owner=users["compliance"], source=source
                )
                offset = DUE_OFFSETS[name].get(obligation.duty.code)
                if offset is not None and obligation.current_cycle is not None:
                    set_due_date(
                        actor=system,
                        cycle=obligation.current_cycle,
                        due=today + dt.timedelta(days=offset),
                        reason="Demo data: a spread of deadlines.",
                        source=source,
                    )
        self._technology_notice(system, today)
        self._information_notice(system, today)
        self._assessments(users)
        self._other_organisation(system)
        # Counted as the register and My work count them: provider-wide ones (fees) included.
        obligations = Obligation.objects.filter(provider__organisation=org)
        self.stdout.write(
            f"Demo data ready: {Service.objects.filter(provider__organisation=org).count()} "
            f"services, {obligations.count()} obligations in {org} "
            f"({obligations.filter(service__isnull=True).count()} of them provider-wide)."
        )

    def _technology_notice(self, system: Any, today: dt.date) -> None:
        """Northwind Chat (end-to-end encrypted) has a warning notice: representations due."""
        chat = Service.objects.get(name="Northwind Chat")
        if chat.technology_notices.exists():
            return
        notice = record_notice(
            actor=system,
            notice=TechnologyNotice(
                service=chat,
                ofcom_reference="DEMO/TN/2026/001",
                csea_public=True,
                csea_private=True,
                requirement=TechnologyRequirement.USE,
                accredited_technology="(demo) accredited CSEA hash-matching",
                skilled_report_on=today - dt.timedelta(days=40),
                warning_given_on=today - dt.timedelta(days=10),
                representations_due=today + dt.timedelta(days=18),
            ),
            source=EventSource.COMMAND,
        )
        move_technology_notice(
            actor=system,
            notice=notice,
            to=NoticeStage.WARNING,
            on=today - dt.timedelta(days=10),
            source=EventSource.COMMAND,
        )

    def _information_notice(self, system: Any, today: dt.date) -> None:
        """Northwind Search has an information notice (s.100) with a response date."""
        search = Service.objects.get(name="Northwind Search")
        if search.ofcom_notices.exists():
            return
        record_notice(
            actor=system,
            notice=OfcomNotice(
                service=search,
                kind=NoticeKind.INFORMATION,
                ofcom_reference="DEMO/INFO/2026/014",
                given_on=today - dt.timedelta(days=4),
                respond_by=today + dt.timedelta(days=10),
            ),
            source=EventSource.COMMAND,
        )

    def _assessments(self, users: dict[str, Any]) -> None:
        """Northwind Social: a complete illegal content assessment (ready to approve), a
        children's assessment in progress, and a measures register with every kind of
        decision."""
        social = Service.objects.get(name="Northwind Social")
        ra = social.obligations.get(duty__code="U2U-ILLEGAL-RA").current_cycle
        if ra is None or RiskAssessment.objects.filter(cycle=ra).exists():
            return
        casey, source = users["compliance"], EventSource.COMMAND
        illegal = start_assessment(actor=casey, cycle=ra, source=source)
        update_assessment_notes(
            actor=casey,
            assessment=illegal,
            understand="Ofcom's Register of Risks and U2U Risk Profile; 12 months of user "
            "reports and moderation outcomes; NCMEC and IWF referrals; a red-team of direct "
            "messaging and livestreaming.",
            review="Reported to the trust and safety board; reviewed every 12 months and before "
            "any significant change to messaging or recommendations.",
        )
        factors = {f.code: f for f in RiskFactor.objects.all()}
        for entry in illegal.entries.select_related("harm_kind").prefetch_related("risk_factors"):
            likelihood, impact = DEMO_RATINGS.get(entry.harm_kind.code, ("low", "medium"))
            # The factors the catalogue pre-selected (encrypted messaging on CSEA) stay.
            chosen = {*entry.risk_factors.all(), *(factors[c] for c in DEMO_FACTORS)}
            rate_entry(
                actor=casey,
                entry=entry,
                likelihood=likelihood,
                impact=impact,
                rationale=f"{entry.harm_kind.label}: {likelihood} likelihood given our reports "
                f"and risk factors; {impact} impact for the users affected.",
                risk_factors=sorted(chosen, key=lambda f: f.code),
                private_channels=DEMO_PRIVATE_CHANNELS if entry.harm_kind.group == "csea" else "",
            )
        child = social.obligations.get(duty__code="U2U-CHILD-RA").current_cycle
        assert child is not None
        children = start_assessment(actor=casey, cycle=child, source=source)
        for entry in children.entries.select_related("harm_kind")[:8]:
            rate_entry(
                actor=casey,
                entry=entry,
                likelihood="medium",
                impact="high",
                rationale="Draft: rated from the illegal content findings; age-group data due.",
            )
        self._measures(social, casey)

    def _measures(self, social: Service, casey: Any) -> None:
        safety = social.obligations.get(duty__code="U2U-ILLEGAL-SAFETY").current_cycle
        assert safety is not None
        link = add_evidence_link(
            actor=casey,
            cycle=safety,
            url="https://docs.northwind.example/policy/moderation-operations.pdf",
            title="Moderation operations manual",
            source=EventSource.COMMAND,
        )
        decisions: tuple[tuple[str, str, str, list[Evidence]], ...] = (
            ("ICU C1", MeasureDecisionKind.ADOPTED, "Review queue staffed 24/7.", [link]),
            ("ICU C2", MeasureDecisionKind.ADOPTED, "Takedown within our published SLA.", [link]),
            (
                "ICU G3",
                MeasureDecisionKind.ALTERNATIVE,
                "Terms are published as an in-app walkthrough rather than one page; user testing "
                "shows the same findability and reading age, meeting the duty as s.23(4) records.",
                [],
            ),
            (
                "ICU J3",
                MeasureDecisionKind.NOT_APPLICABLE,
                "No notable-user verification or paid labelling scheme runs on the service.",
                [],
            ),
        )
        for code, decision, detail, evidence in decisions:
            decide_measure(
                actor=casey,
                service=social,
                measure=CodeMeasure.objects.get(code=code),
                decision=decision,
                detail=detail,
                evidence=evidence,
            )

    def _other_organisation(self, system: Any) -> None:
        org, _ = Organisation.objects.get_or_create(name="Elsewhere Games Ltd")
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username="elsewhere", defaults={"email": "compliance@elsewhere.example"}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        _join(system, org, user, Role.COMPLIANCE)
        provider, _ = Provider.objects.get_or_create(organisation=org, name="Elsewhere Games")
        service, created = Service.objects.get_or_create(
            provider=provider,
            name="Elsewhere Arena",
            defaults={
                "user_to_user": True,
                "uk_monthly_users": 800_000,
                "children_likely_to_access": True,
            },
        )
        if created:
            service.features.set(
                Feature.objects.filter(code__in=["direct_messaging", "livestreaming"])
            )
        apply_catalogue(actor=system, service=service, source=EventSource.COMMAND)
