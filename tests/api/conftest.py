"""What the API tests share: two organisations, their people and services."""

import pytest

from obligations.access.models import Role
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member


@pytest.fixture
def team(catalogue):  # type: ignore[no-untyped-def]
    org, other_org = OrganisationFactory(name="Ours"), OrganisationFactory(name="Theirs")
    provider = ProviderFactory(organisation=org, name="Northwind")
    service = applied_service(provider=provider, name="Chat")
    other = applied_service(provider=ProviderFactory(organisation=other_org), name="Elsewhere")
    return {
        "org": org,
        "provider": provider,
        "service": service,
        "other": other,
        "casey": member(org, username="casey"),
        "rita": member(org, username="rita"),
        "audrey": member(org, role=Role.AUDITOR, username="audrey"),
        "eve": member(other_org, username="eve"),
    }
