"""Password reset by e-mail (obligations/access/passwords.py, admin_passwords.py)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from obligations.access.models import AccessAction, AccessLog
from tests.factories import OrganisationFactory, member

NEW = "a-new-long-passphrase-42"


@pytest.fixture
def casey(db, settings):  # type: ignore[no-untyped-def]
    settings.SITE_URL = "https://tracker.example.org"
    return member(OrganisationFactory(), username="casey", email="casey@example.test")


def ask(email: str, ip: str = "203.0.113.9") -> str:
    response = Client().post(reverse("admin_password_reset"), {"email": email}, REMOTE_ADDR=ip)
    assert response.status_code == 302
    return str(response["Location"])


def test_the_reset_link_sets_a_new_password_on_record(casey):
    assert "Forgotten your" in Client().get(reverse("admin:login")).content.decode()
    assert ask("Casey@example.test") == reverse("password_reset_done")
    (sent,) = mail.outbox
    assert sent.to == ["casey@example.test"]
    # The link names SITE_URL's host, not whatever Host the request carried.
    link = re.search(r"https://tracker\.example\.org(/admin/reset/\S+/)", sent.body)
    assert link
    client = Client()
    form_page = client.get(link.group(1), follow=True)
    assert "new_password1" in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW}
    )
    assert done["Location"] == reverse("password_reset_complete")
    casey.refresh_from_db()
    assert casey.check_password(NEW)
    changed = AccessLog.objects.get(action=AccessAction.PASSWORD_CHANGED)
    assert changed.user == casey and changed.ip_address == "127.0.0.1"


def test_an_unknown_address_gets_the_same_answer_and_no_mail(casey):
    assert ask("nobody@example.test") == reverse("password_reset_done")
    assert mail.outbox == []
    asked = AccessLog.objects.get(action=AccessAction.PASSWORD_RESET_ASKED)
    assert asked.username == "nobody@example.test" and asked.user is None


def test_an_account_without_a_usable_password_gets_no_mail(casey):
    casey.set_unusable_password()  # e.g. signs in through single sign-on only
    casey.save()
    assert ask("casey@example.test") == reverse("password_reset_done")
    assert mail.outbox == []


def test_reset_mails_for_one_address_are_throttled(casey, settings, clock):
    for _ in range(settings.PASSWORD_RESETS_PER_HOUR + 2):
        assert ask("casey@example.test") == reverse("password_reset_done")
    assert len(mail.outbox) == settings.PASSWORD_RESETS_PER_HOUR
    refused = AccessLog.objects.filter(description__contains="no mail sent")
    assert refused.count() == 2
    clock.shift(60 * 61)
    ask("casey@example.test")
    assert len(mail.outbox) == settings.PASSWORD_RESETS_PER_HOUR + 1


def test_one_client_cannot_ask_for_many_addresses(casey, settings):
    settings.SIGN_IN_FAILURES_PER_ADDRESS = 3
    for n in range(3):
        ask(f"someone{n}@example.test")
    ask("casey@example.test")
    assert mail.outbox == []
    ask("casey@example.test", ip="198.51.100.7")
    assert len(mail.outbox) == 1
