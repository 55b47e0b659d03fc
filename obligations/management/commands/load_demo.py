"""Demo data: one organisation with two providers and four services, and a second
organisation whose data the first must never see. Idempotent."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from obligations import models as m
from obligations import services

DEMO_PASSWORD = "demo-osa-2026"
DEMO_USERS = (
    ("compliance", "Casey", "Compliance", m.Role.COMPLIANCE),
    ("reviewer", "Robin", "Reviewer", m.Role.COMPLIANCE),
    ("manager", "Morgan", "Manager", m.Role.MANAGER),
    ("auditor", "Avery", "Auditor", m.Role.AUDITOR),
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


class Command(BaseCommand):
    help = "Load demo organisations, users, providers and services (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        if not m.Duty.objects.exists():
            raise CommandError("No catalogue is loaded: run `python manage.py load_catalogue`.")
        system = services.get_system_user()
        source = m.EventSource.COMMAND
        today = services.london_today()
        org, _ = m.Organisation.objects.get_or_create(name="Northwind Media Group")
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
            services.add_member(actor=system, organisation=org, user=user, role=role)
            users[username] = user
        providers = {}
        for name in dict.fromkeys(s[0] for s in SERVICES):
            providers[name], _ = m.Provider.objects.get_or_create(
                organisation=org, name=name, defaults={"legal_name": name, "country": "UK"}
            )
        # Calendar-year accounting periods: each is also a fees qualifying period. Northwind
        # Search crosses the fees threshold in 2025, so it must notify for 2027/28 (s.83(1)).
        for provider, year, amount in REVENUE:
            m.RevenuePeriod.objects.get_or_create(
                provider=providers[provider],
                kind=m.RevenueKind.ACCOUNTING,
                start=dt.date(year, 1, 1),
                defaults={
                    "end": dt.date(year, 12, 31),
                    "amount_gbp": Decimal(amount),
                    "basis": m.RevenueBasis.AUDITED,
                },
            )
        for provider, name, u2u, search, cats, n_users, children, features in SERVICES:
            service, created = m.Service.objects.get_or_create(
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
                service.categories.set(m.RegisterCategory.objects.filter(code__in=cats))
                service.features.set(m.Feature.objects.filter(code__in=features))
            services.apply_catalogue(actor=system, service=service, source=source)
            if not created:
                continue
            provider_wide = m.Obligation.objects.filter(
                provider=service.provider, service__isnull=True, owner__isnull=True
            )
            for obligation in provider_wide.select_related("current_cycle"):
                services.assign_owner(
                    actor=system, obligation=obligation, owner=users["compliance"], source=source
                )
            for obligation in service.obligations.select_related("duty", "current_cycle"):
                services.assign_owner(
                    actor=system, obligation=obligation, owner=users["compliance"], source=source
                )
                offset = DUE_OFFSETS[name].get(obligation.duty.code)
                if offset is not None and obligation.current_cycle is not None:
                    services.set_due_date(
                        actor=system,
                        cycle=obligation.current_cycle,
                        due=today + dt.timedelta(days=offset),
                        reason="Demo data: a spread of deadlines.",
                        source=source,
                    )
        self._technology_notice(system, today)
        self._information_notice(system, today)
        self._other_organisation(system)
        self.stdout.write(
            f"Demo data ready: {m.Service.objects.filter(provider__organisation=org).count()} "
            f"services, {m.Obligation.objects.filter(service__provider__organisation=org).count()}"
            f" obligations in {org}."
        )

    def _technology_notice(self, system: Any, today: dt.date) -> None:
        """Northwind Chat (end-to-end encrypted) has a warning notice: representations due."""
        chat = m.Service.objects.get(name="Northwind Chat")
        if chat.technology_notices.exists():
            return
        notice = services.record_notice(
            actor=system,
            notice=m.TechnologyNotice(
                service=chat,
                ofcom_reference="DEMO/TN/2026/001",
                csea_public=True,
                csea_private=True,
                requirement=m.TechnologyRequirement.USE,
                accredited_technology="(demo) accredited CSEA hash-matching",
                skilled_report_on=today - dt.timedelta(days=40),
                warning_given_on=today - dt.timedelta(days=10),
                representations_due=today + dt.timedelta(days=18),
            ),
            source=m.EventSource.COMMAND,
        )
        services.move_technology_notice(
            actor=system,
            notice=notice,
            to=m.NoticeStage.WARNING,
            on=today - dt.timedelta(days=10),
            source=m.EventSource.COMMAND,
        )

    def _information_notice(self, system: Any, today: dt.date) -> None:
        """Northwind Search has an information notice (s.100) with a response date."""
        search = m.Service.objects.get(name="Northwind Search")
        if search.ofcom_notices.exists():
            return
        services.record_notice(
            actor=system,
            notice=m.OfcomNotice(
                service=search,
                kind=m.NoticeKind.INFORMATION,
                ofcom_reference="DEMO/INFO/2026/014",
                given_on=today - dt.timedelta(days=4),
                respond_by=today + dt.timedelta(days=10),
            ),
            source=m.EventSource.COMMAND,
        )

    def _other_organisation(self, system: Any) -> None:
        org, _ = m.Organisation.objects.get_or_create(name="Elsewhere Games Ltd")
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username="elsewhere", defaults={"email": "compliance@elsewhere.example"}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        services.add_member(actor=system, organisation=org, user=user, role=m.Role.COMPLIANCE)
        provider, _ = m.Provider.objects.get_or_create(organisation=org, name="Elsewhere Games")
        service, created = m.Service.objects.get_or_create(
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
                m.Feature.objects.filter(code__in=["direct_messaging", "livestreaming"])
            )
        services.apply_catalogue(actor=system, service=service, source=m.EventSource.COMMAND)
