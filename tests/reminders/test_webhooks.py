"""Webhook deliveries against a real HTTP receiver on loopback: one post per reminder and
endpoint, retried on a 5xx, given up on a 4xx, never duplicated by a second sweep or run, and
finished by the next run after one dies (the e-mail's one duplicate window, with the same
Idempotency-Key)."""

import datetime as dt
import hashlib
import hmac

import pytest
from django.core import mail

from obligations.access.models import Role
from obligations.reminders import webhooks
from obligations.reminders.delivery import DeliveryFailed
from obligations.reminders.endpoints import change_webhook, create_webhook
from obligations.reminders.models import WebhookDelivery, WebhookKind, WebhookStatus
from obligations.reminders.sweep import run_sweep
from obligations.reminders.webhooks import deliver_webhooks
from obligations.tasks import deliver_reminders
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, ServiceFactory, member
from tests.reminders.helpers import day, obligation
from tests.reminders.receiver import receiver

__all__ = ["receiver"]  # the fixture, used by name


@pytest.fixture
def admin_of(org):  # type: ignore[no-untyped-def]
    return member(org["org"], Role.ADMIN, username="ada")


def hook(org, admin, url, kind=WebhookKind.SLACK, **switches):  # type: ignore[no-untyped-def]
    endpoint, secret = create_webhook(
        actor=admin, organisation=org["org"], kind=kind, url=url, name="Compliance", **switches
    )
    return endpoint, secret


def test_each_reminder_is_posted_once_to_each_endpoint_in_words(org, admin_of, receiver):
    hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))  # due soon: to its owner
    obligation(org, code="U2U-RECORDS", due=day(-3))  # overdue: to its owner and the manager
    result = run_sweep(today=TODAY)
    # Three e-mailed reminders, to two people; two reminders, so two posts.
    assert result.sent == 3
    assert result.webhooks_sent == 2
    assert len(receiver.posts) == 2
    texts = sorted(b["text"] for b in receiver.bodies())
    assert texts[0].startswith("Due soon: U2U-ILLEGAL-RA")
    assert "due on 1 Dec 2026 (in 7 days)" in texts[0]
    assert texts[1].startswith("Overdue: escalation: U2U-RECORDS")
    assert "21 Nov 2026" in texts[1]
    blocks = str(receiver.bodies()[0]["blocks"])
    assert "http://127.0.0.1:8000/admin/obligations/obligation/" in blocks
    assert "Acme Group" in blocks
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {WebhookStatus.SENT}
    assert sorted(receiver.keys()) == sorted(
        str(pk) for pk in WebhookDelivery.objects.values_list("pk", flat=True)
    )


def test_a_second_sweep_and_a_second_delivery_post_nothing_again(org, admin_of, receiver):
    hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))
    run_sweep(today=TODAY)
    run_sweep(today=TODAY)
    assert deliver_webhooks() == 0
    assert deliver_reminders.apply().result["webhooks"] == 0
    assert len(receiver.posts) == 1
    assert WebhookDelivery.objects.count() == 1


def test_a_500_is_retried_after_its_backoff_and_delivered_once(org, admin_of, receiver, clock):
    hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))
    receiver.answer(500)
    with pytest.raises(DeliveryFailed):  # for Celery to retry the task
        run_sweep(today=TODAY)
    assert len(mail.outbox) == 1  # the e-mail went all the same
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.claim) == (WebhookStatus.PENDING, 1, "")
    assert row.last_error == "The receiver answered 500 Internal Server Error"
    # Not before its backoff (30 s after the first failure).
    assert deliver_webhooks() == 0
    clock.shift(dt.timedelta(seconds=31))
    assert deliver_webhooks() == 1
    assert len(receiver.posts) == 2
    assert receiver.keys()[0] == receiver.keys()[1] == str(row.pk)
    row.refresh_from_db()
    assert row.status == WebhookStatus.SENT
    assert deliver_webhooks() == 0
    assert len(receiver.posts) == 2


def test_a_429_waits_as_long_as_the_receiver_asks_within_the_bound(
    org, admin_of, receiver, clock, settings
):
    settings.WEBHOOK_RETRY_AFTER_MAX_SECONDS = 600
    hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))
    receiver.answer(429, **{"Retry-After": "120"})
    with pytest.raises(DeliveryFailed):
        run_sweep(today=TODAY)
    row = WebhookDelivery.objects.get()
    assert row.retry_at is not None
    assert row.retry_at - row.created_at == dt.timedelta(seconds=120)
    clock.shift(dt.timedelta(seconds=119))
    assert deliver_webhooks() == 0
    receiver.answer(429, **{"Retry-After": "86400"})
    clock.shift(dt.timedelta(seconds=2))
    with pytest.raises(DeliveryFailed):
        deliver_webhooks()
    row.refresh_from_db()
    assert row.retry_at == dt.datetime.now(dt.UTC) + dt.timedelta(seconds=600)


def test_a_400_is_not_retried_and_its_failure_is_kept(org, admin_of, receiver, clock):
    hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))
    receiver.answer(404)
    result = run_sweep(today=TODAY)  # nothing to retry: the run succeeds
    assert (result.webhooks_sent, result.webhooks_failed) == (0, 1)
    assert "1 webhook post(s) given up: see the admin" in result.summary()
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts) == (WebhookStatus.FAILED, 1)
    assert row.last_error == "The receiver answered 404 Not Found"
    clock.shift(dt.timedelta(hours=1))
    assert deliver_webhooks() == 0
    assert len(receiver.posts) == 1


def test_a_redirect_is_not_followed(org, admin_of, receiver):
    hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))
    receiver.answer(302, Location=receiver.url + "/elsewhere")
    run_sweep(today=TODAY)
    assert len(receiver.posts) == 1
    row = WebhookDelivery.objects.get()
    assert row.status == WebhookStatus.FAILED
    assert "a redirect, which is not followed" in row.last_error


def test_given_up_after_the_configured_attempts(org, admin_of, receiver, clock, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))
    for _ in range(5):
        receiver.answer(503)
    with pytest.raises(DeliveryFailed):
        run_sweep(today=TODAY)
    clock.shift(dt.timedelta(seconds=31))
    with pytest.raises(DeliveryFailed):
        deliver_webhooks()
    clock.shift(dt.timedelta(seconds=61))
    assert deliver_webhooks() == 0  # the third failure gives up: no retry asked for
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts) == (WebhookStatus.FAILED, 3)
    clock.shift(dt.timedelta(hours=1))
    deliver_webhooks()
    assert len(receiver.posts) == 3


def test_no_answer_is_retried(org, admin_of, receiver, settings):
    hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))
    receiver.server.shutdown()
    receiver.server.server_close()  # nobody listens on the port now
    with pytest.raises(DeliveryFailed):
        run_sweep(today=TODAY)
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts) == (WebhookStatus.PENDING, 1)
    assert row.last_error.startswith("No answer from the receiver")


def test_a_signed_post_verifies_with_the_secret_shown_once(org, admin_of, receiver):
    _, secret = hook(org, admin_of, receiver.url, kind=WebhookKind.SIGNED)
    obligation(org, due=day(7))
    run_sweep(today=TODAY)
    headers, body = receiver.posts[0]
    stamp, signature = (part.split("=", 1)[1] for part in headers["X-Osa-Signature"].split(","))
    assert int(stamp) == int(dt.datetime.now(dt.UTC).timestamp())
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(signature, expected.hexdigest())
    sent = receiver.bodies()[0]
    assert sent["event"] == "digests"
    assert sent["deadline"] == "2026-12-01"
    assert sent["deadline_display"] == "1 Dec 2026"
    assert secret not in body.decode()


def test_a_teams_post_is_an_adaptive_card(org, admin_of, receiver):
    hook(org, admin_of, receiver.url, kind=WebhookKind.TEAMS)
    obligation(org, due=day(7))
    run_sweep(today=TODAY)
    (attachment,) = receiver.bodies()[0]["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "Due soon (Acme Group)" in str(attachment["content"]["body"])


def test_each_endpoint_gets_only_its_events_and_only_its_organisation(
    org, admin_of, receiver, settings
):
    hook(org, admin_of, receiver.url, digests=False, notice_deadlines=False)  # escalations only
    other = OrganisationFactory(name="Other Group")
    other_ctx = {
        "org": other,
        "owner": member(other, username="otto"),
        "service": ServiceFactory(provider=ProviderFactory(organisation=other)),
    }
    obligation(org, due=day(7))
    obligation(org, code="U2U-RECORDS", due=day(-3))
    obligation(other_ctx, due=day(-3))
    run_sweep(today=TODAY)
    assert [b["text"].split(":")[0] for b in receiver.bodies()] == ["Overdue"]
    assert "Other Group" not in str(receiver.bodies())


def test_a_switched_off_endpoint_gets_nothing_pending(org, admin_of, receiver, clock):
    endpoint, _ = hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))
    receiver.answer(500)
    with pytest.raises(DeliveryFailed):
        run_sweep(today=TODAY)
    change_webhook(actor=admin_of, endpoint=endpoint, active=False)
    clock.shift(dt.timedelta(seconds=31))
    deliver_webhooks()
    assert WebhookDelivery.objects.get().status == WebhookStatus.CANCELLED
    assert len(receiver.posts) == 1


class Died(BaseException):
    """The process killed: nothing in the run can catch it, as nothing catches a SIGKILL."""


@pytest.mark.parametrize(
    ("where", "posts"),
    [
        ("before_posting", 1),
        # The documented window: accepted by the receiver, not yet marked sent.
        ("after_the_receiver_accepted", 2),
    ],
)
def test_a_run_that_dies_is_finished_by_the_next_after_its_lease(
    org, admin_of, receiver, monkeypatch, clock, settings, where, posts
):
    settings.REMINDER_CLAIM_LEASE_SECONDS = 60
    hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))

    real_post = webhooks.post

    def die(*args):  # type: ignore[no-untyped-def]
        if where == "after_the_receiver_accepted":
            real_post(*args)
        raise Died

    with monkeypatch.context() as patch:
        patch.setattr(webhooks, "post", die)
        with pytest.raises(Died):
            run_sweep(today=TODAY)
    # Until the lease lapses, the dead run's claim holds.
    run_sweep(today=TODAY)
    clock.shift(dt.timedelta(seconds=59))
    assert deliver_reminders.apply().result["webhooks"] == 0
    clock.shift(dt.timedelta(seconds=2))
    assert deliver_reminders.apply().result["webhooks"] == 1
    assert len(receiver.posts) == posts
    assert len(set(receiver.keys())) == 1  # a duplicate carries the same Idempotency-Key
    assert WebhookDelivery.objects.get().status == WebhookStatus.SENT


def test_an_address_no_key_can_read_is_given_up_asking_for_it_again(
    org, admin_of, receiver, settings
):
    settings.NOTIFICATION_ENCRYPTION_KEYS = []
    hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))
    settings.SECRET_KEY = "a new secret key, the old addresses unreadable"
    run_sweep(today=TODAY)
    row = WebhookDelivery.objects.get()
    assert row.status == WebhookStatus.FAILED
    assert row.last_error == "The stored address cannot be read: enter it again."
    assert receiver.posts == []


def test_a_post_that_cannot_be_built_costs_its_row_alone(org, admin_of, receiver, monkeypatch):
    hook(org, admin_of, receiver.url)
    obligation(org, due=day(7))
    obligation(org, code="U2U-RECORDS", due=day(-3))
    real = webhooks.payload

    def broken(kind, message):  # type: ignore[no-untyped-def]
        if message.kind == "overdue":
            raise ZeroDivisionError
        return real(kind, message)

    monkeypatch.setattr(webhooks, "payload", broken)
    result = run_sweep(today=TODAY)  # not raised for a retry: a bug is not retried
    assert (result.webhooks_sent, result.webhooks_failed) == (1, 1)
    failed = WebhookDelivery.objects.get(status=WebhookStatus.FAILED)
    assert failed.kind == "overdue"
    assert failed.last_error == "Not sent after an error in the tracker: see its log."
    assert len(receiver.posts) == 1
