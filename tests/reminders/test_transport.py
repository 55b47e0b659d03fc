"""A webhook address is untrusted: it may not lead inside our network, however it is written
or whatever its name resolves to, and a receiver may not hold a worker past one deadline."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.core.exceptions import ValidationError

from obligations.reminders import transport
from obligations.reminders.sealed import validate_webhook_url


@pytest.mark.parametrize(
    "url",
    [
        "https://0x7f.1/hook",  # 127.0.0.1, as resolvers read it
        "https://127.1/hook",
        "https://2130706433/hook",
        "https://017700000001/hook",
        "https://0251.0376.0251.0376/latest/meta-data",  # 169.254.169.254
        "https://0/hook",
        "https://10.0.0.5/hook",
        "https://[::127.0.0.1]/hook",  # IPv4-compatible
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
        "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
        "https://[fe80::1]/hook",
        "https://localhost/hook",
        "https://hooks.localhost/hook",
        "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/hook",  # fullwidth
        "https://127\u30020\u30020\u30021/hook",  # ideographic full stops
    ],
)
def test_an_address_inside_a_private_network_is_refused_however_written(url):
    with pytest.raises(ValidationError):
        validate_webhook_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T0/B0/x",
        "https://8.8.8.8/hook",
        "https://xn--bcher-kva.example/",
    ],
)
def test_a_public_address_is_accepted(url):
    validate_webhook_url(url)


def test_a_name_that_resolves_inside_is_refused_when_posting(monkeypatch):
    """Names are looked up when the post connects, and every answer must be public."""
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 443)),
               (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443))]  # fmt: skip
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answers)
    with pytest.raises(transport.AddressRefused, match="private network"):
        transport.post(
            "https://rebinding.example/hook", b"{}", {}, timeout=2, loopback_allowed=False
        )


@pytest.fixture
def dripping() -> Iterator[int]:
    """A receiver that answers one byte every 0.2 s: its answer would take a minute."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 300:
                if stop.wait(0.2):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_deadline(dripping):
    started = time.monotonic()
    with pytest.raises((OSError, http.client.HTTPException)):
        transport.post(
            f"http://127.0.0.1:{dripping}/hook", b"{}", {}, timeout=1, loopback_allowed=True
        )
    # Each byte comes well within the per-read timeout: only an overall deadline stops it.
    assert time.monotonic() - started < 10
