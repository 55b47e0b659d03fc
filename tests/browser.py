"""A real browser for tests: Debian's chromium driven by Playwright, headless. Screenshots go
to test-artifacts/browser/ as the run's record."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"


PASSWORD = "demo-osa-2026"  # the demo users' password (load_demo)
SHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "browser"


@pytest.fixture
def browser(monkeypatch):  # type: ignore[no-untyped-def]
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    # Playwright's sync API runs an event loop in this thread; the ORM calls made here
    # are ordinary synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield chromium
        chromium.close()
        # Django's connections are per context, and Playwright's event loop gives the test
        # its own: close it here, or it holds the test database open at teardown.
        connections.close_all()


def browser_sign_in(page, base_url, username):  # type: ignore[no-untyped-def]
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
