"""Team chat webhooks in the admin: made and changed by the organisation's admins alone, the
address encrypted at rest and never shown again, a signed webhook's secret shown once, a test
message through the outbox recording who asked, the list at a constant query count."""

import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from obligations.access.models import Role
from obligations.reminders.delivery import DeliveryFailed
from obligations.reminders.endpoints import create_webhook, send_test_message
from obligations.reminders.models import (
    TEST_MESSAGE,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookKind,
    WebhookStatus,
)
from obligations.reminders.sealed import seal, unseal
from obligations.reminders.webhooks import deliver_webhooks
from tests.factories import OrganisationFactory, member
from tests.helpers import admin_form_data, assert_constant_queries, signed_in_client
from tests.reminders.receiver import receiver
from tests.test_words import raw_values

__all__ = ["receiver"]  # the fixture, used by name

ADD = reverse("admin:obligations_webhookendpoint_add")
LIST = reverse("admin:obligations_webhookendpoint_changelist")
SLACK_URL = "https://hooks.slack.com/services/T0123/B0456/s3cr3tT0k3nXyZ9"


def change_url(endpoint: WebhookEndpoint) -> str:
    return reverse("admin:obligations_webhookendpoint_change", args=[endpoint.pk])


@pytest.fixture
def ada(org):  # type: ignore[no-untyped-def]
    return member(org["org"], Role.ADMIN, username="ada", first_name="Ada", last_name="King")


def add_form(org, **values):  # type: ignore[no-untyped-def]
    return {
        "organisation": org["org"].pk,
        "kind": WebhookKind.SLACK,
        "name": "Compliance channel",
        "address": SLACK_URL,
        "digests": "on",
        "escalations": "on",
        "active": "on",
        **values,
    }


def raw_row(endpoint: WebhookEndpoint) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM obligations_webhookendpoint WHERE id = %s", [endpoint.pk])
        return repr(cursor.fetchone())


def test_an_admin_adds_a_webhook_whose_address_is_never_shown_again(org, ada):
    client = signed_in_client(ada)
    response = client.post(ADD, add_form(org))
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.created_by == ada
    assert (endpoint.digests, endpoint.notice_deadlines) == (True, False)
    # Encrypted at rest: the row holds no part of the secret path.
    assert "s3cr3tT0k3n" not in raw_row(endpoint)
    assert unseal(endpoint.url_sealed) == SLACK_URL
    for page in (client.get(LIST), client.get(change_url(endpoint))):
        html = page.content.decode()
        assert "s3cr3tT0k3n" not in html
        assert "hooks.slack.com …XyZ9" in html


def test_a_signed_webhooks_secret_is_shown_once_and_stored_encrypted(org, ada):
    client = signed_in_client(ada)
    response = client.post(ADD, add_form(org, kind=WebhookKind.SIGNED))
    # On the answer itself, never cached, and in no message (a cookie or the session).
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = response.context["secret"]
    assert secret.startswith("whsec_") and f'value="{secret}"' in response.content.decode()
    assert not list(response.context["messages"])
    assert secret not in str(dict(client.session)) and secret not in str(client.cookies)
    endpoint = WebhookEndpoint.objects.get()
    assert unseal(endpoint.secret_sealed) == secret
    assert secret not in raw_row(endpoint)
    assert secret not in client.get(change_url(endpoint)).content.decode()
    assert secret not in client.get(LIST).content.decode()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/x", "must begin https://"),
        ("ftp://hooks.example.com/x", "must begin https://"),
        ("https://hooks.example.com/x\r\nX-Injected: 1", "one line"),
        ("https://hooks.example.com/" + "a" * 2000, "at most 2000 characters"),
        ("https://10.0.0.5/hook", "public host"),
        ("https://user:pw@hooks.example.com/x", "user name or password"),
    ],
)
def test_a_bad_address_is_refused_naming_the_field_keeping_what_was_typed(org, ada, url, message):
    response = signed_in_client(ada).post(ADD, add_form(org, address=url, name="Kept name"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors["address"])
    assert "Kept name" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_plain_http_to_loopback_only_when_allowed(org, ada, settings):
    url = "http://127.0.0.1:9/hook"
    settings.WEBHOOK_ALLOW_LOOPBACK_HTTP = False
    assert signed_in_client(ada).post(ADD, add_form(org, address=url)).status_code == 200
    settings.WEBHOOK_ALLOW_LOOPBACK_HTTP = True
    assert signed_in_client(ada).post(ADD, add_form(org, address=url)).status_code == 302


def test_editing_keeps_the_address_unless_typed_again_and_records_who(org, ada):
    endpoint, _ = create_webhook(
        actor=ada, organisation=org["org"], kind=WebhookKind.SLACK, url=SLACK_URL, name="A"
    )
    client = signed_in_client(ada)
    page = client.get(change_url(endpoint))
    data = admin_form_data(page)
    assert data["address"] == ""
    assert client.post(change_url(endpoint), {**data, "name": "B"}).status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.changed_by) == ("B", ada)
    assert unseal(endpoint.url_sealed) == SLACK_URL
    new = "https://hooks.slack.com/services/T0123/B0456/n3wT0k3nAbCd"
    assert (
        client.post(change_url(endpoint), {**data, "name": "B", "address": new}).status_code == 302
    )
    endpoint.refresh_from_db()
    assert unseal(endpoint.url_sealed) == new
    assert endpoint.url_hint == "hooks.slack.com …AbCd"


def test_only_the_organisations_admins_see_its_webhooks(org, ada):
    endpoint, _ = create_webhook(
        actor=ada, organisation=org["org"], kind=WebhookKind.SLACK, url=SLACK_URL, name="A"
    )
    other = OrganisationFactory(name="Other Group")
    other_admin = member(other, Role.ADMIN, username="oscar")
    response = signed_in_client(other_admin).get(change_url(endpoint))
    assert response.status_code == 404
    assert "A (Slack)" not in signed_in_client(other_admin).get(LIST).content.decode()
    for role in (Role.COMPLIANCE, Role.AUDITOR, Role.MANAGER):
        colleague = member(org["org"], role, username=f"colleague-{role}")
        client = signed_in_client(colleague)
        assert client.get(LIST).status_code == 403
        assert client.get(change_url(endpoint)).status_code in (403, 404)
        deliveries = reverse("admin:obligations_webhookdelivery_changelist")
        assert client.get(deliveries).status_code == 403


def test_a_test_message_goes_through_the_outbox_and_records_who_asked(org, ada, receiver):
    endpoint, _ = create_webhook(
        actor=ada, organisation=org["org"], kind=WebhookKind.SLACK, url=receiver.url, name="A"
    )
    response = signed_in_client(ada).post(
        LIST, {"action": "test_message", "_selected_action": [endpoint.pk]}
    )
    assert response.status_code == 302
    row = WebhookDelivery.objects.get()
    assert (row.kind, row.requested_by, row.status) == (TEST_MESSAGE, ada, WebhookStatus.PENDING)
    assert deliver_webhooks() == 1
    (body,) = receiver.bodies()
    assert body["text"] == (
        "Test message: A test message for “A”, asked for by Ada King on 24 Nov 2026. "
        "Reminders will look like this."
    )


def test_a_failed_delivery_is_shown_in_the_admin_with_why(org, ada, receiver):
    endpoint, _ = create_webhook(
        actor=ada, organisation=org["org"], kind=WebhookKind.SLACK, url=receiver.url, name="A"
    )
    send_test_message(actor=ada, endpoint=endpoint)
    receiver.answer(410)
    deliver_webhooks()
    client = signed_in_client(ada)
    deliveries = client.get(reverse("admin:obligations_webhookdelivery_changelist"))
    assert "The receiver answered 410 Gone" in deliveries.content.decode()
    assert "Failed: given up" in deliveries.content.decode()
    listing = client.get(LIST)
    assert listing.context["cl"].result_list[0].failed == 1


def test_the_webhook_lists_cost_the_same_queries_at_two_sizes(org, ada):
    client = signed_in_client(ada)

    def grow(size):  # type: ignore[no-untyped-def]
        while WebhookEndpoint.objects.count() < size:
            endpoint, _ = create_webhook(
                actor=ada, organisation=org["org"], kind=WebhookKind.SLACK, url=SLACK_URL, name="x"
            )
            send_test_message(actor=ada, endpoint=endpoint)

    assert_constant_queries(grow, lambda: client.get(LIST), (2, 12))
    deliveries = reverse("admin:obligations_webhookdelivery_changelist")
    assert_constant_queries(grow, lambda: client.get(deliveries), (13, 25))


def test_a_new_key_put_first_reads_the_old_and_the_command_moves_them_to_it(org, ada, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.NOTIFICATION_ENCRYPTION_KEYS = [old]
    _, secret = create_webhook(
        actor=ada, organisation=org["org"], kind=WebhookKind.SIGNED, url=SLACK_URL, name="A"
    )
    settings.NOTIFICATION_ENCRYPTION_KEYS = [new, old]
    assert unseal(WebhookEndpoint.objects.get().url_sealed) == SLACK_URL
    call_command("reencrypt_webhooks", stdout=io.StringIO())
    settings.NOTIFICATION_ENCRYPTION_KEYS = [new]
    stored = WebhookEndpoint.objects.get()
    assert (unseal(stored.url_sealed), unseal(stored.secret_sealed)) == (SLACK_URL, secret)


def test_without_a_dedicated_key_one_is_derived_from_the_secret_key(settings):
    settings.NOTIFICATION_ENCRYPTION_KEYS = []
    sealed = seal(SLACK_URL)
    assert unseal(sealed) == SLACK_URL
    settings.SECRET_KEY = "another secret key entirely"
    with pytest.raises(InvalidToken):
        unseal(sealed)


def test_the_webhook_pages_are_in_words(org, ada, receiver):
    endpoint, _ = create_webhook(
        actor=ada, organisation=org["org"], kind=WebhookKind.TEAMS, url=receiver.url, name="A"
    )
    send_test_message(actor=ada, endpoint=endpoint)
    receiver.answer(500)
    with pytest.raises(DeliveryFailed):
        deliver_webhooks()
    client = signed_in_client(ada)
    row = WebhookDelivery.objects.get()
    pages = [
        LIST,
        change_url(endpoint),
        ADD,
        reverse("admin:obligations_webhookdelivery_changelist"),
        reverse("admin:obligations_webhookdelivery_change", args=[row.pk]),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200
        assert raw_values("any", response.content.decode()) == [], url
