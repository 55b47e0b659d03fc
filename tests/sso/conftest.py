import importlib
from collections.abc import Iterator

import pytest
from django.urls import clear_url_caches

from tests.oidc_provider.server import Provider, running_provider


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[Provider]:
    """The throwaway OpenID Connect provider, one process for the run."""
    with running_provider() as provider:
        yield provider


def reload_urls() -> None:
    """tracker/urls.py adds the single sign-on URLs when its settings say so as it is read."""
    importlib.reload(importlib.import_module("tracker.urls"))
    clear_url_caches()


@pytest.fixture
def sso(settings, oidc_provider) -> Iterator[Provider]:  # type: ignore[no-untyped-def]
    """The tracker configured for the provider as its environment would configure it at
    start-up (tracker/settings.py): the OIDC_* settings, the backend and the URLs."""
    for name, value in oidc_provider.tracker_settings().items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "obligations.access.sso.OidcBackend",
    ]
    reload_urls()
    yield oidc_provider
    settings.OIDC_RP_CLIENT_ID = ""
    reload_urls()
