"""The reminder tests' organisation: Acme Group, its owner olive and manager maya."""

import pytest

from obligations.access.models import Role
from tests.factories import OrganisationFactory, ProviderFactory, ServiceFactory, member


@pytest.fixture
def org(catalogue):  # type: ignore[no-untyped-def]
    organisation = OrganisationFactory(name="Acme Group")
    owner = member(organisation, username="olive", first_name="Olive")
    manager = member(organisation, Role.MANAGER, username="maya")
    provider = ProviderFactory(organisation=organisation, name="Acme")
    # A bare service: obligations are made one at a time below, each with its own due date.
    service = ServiceFactory(provider=provider, name="Acme Chat")
    return {"org": organisation, "owner": owner, "manager": manager, "service": service}
