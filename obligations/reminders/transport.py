"""Posting to an address an organisation typed, without letting it reach inside our network
or hold a worker.

An organisation admin chooses where webhooks go, so the address is untrusted. It must be a
public one, and that is checked twice: when it is entered (what is written: every IP form,
0x7f.1 and 2130706433 included, and no non-ASCII host that IDNA would turn into another) and
when each post connects (what the name resolves to then; the connection goes to the address
that was checked, so a DNS answer cannot change in between). A receiver gets one overall
deadline for the whole exchange, not a timeout per read: one that drips its answer a byte at
a time is cut off, instead of holding the worker (and every organisation's deliveries behind
it) until the task's hard limit.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from typing import Any, NamedTuple
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# IPv6 prefixes that carry an IPv4 address inside, which is_global judges by the wrapper:
# IPv4-compatible, IPv4-mapped, NAT64 and 6to4.
_EMBEDDING = tuple(
    ipaddress.ip_network(prefix)
    for prefix in ("::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16")
)
_MAX_ANSWER = 4096


class AddressRefused(ValueError):
    """The address is not one a webhook may go to; the message says why, in words."""


class Answer(NamedTuple):
    status: int
    reason: str
    headers: http.client.HTTPMessage


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and any(address in n for n in _EMBEDDING):
        return False
    return address.is_global and not address.is_multicast


def written_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP a host is written as, in any form a resolver accepts (127.1, 0x7f.0.0.1,
    2130706433, 017700000001), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_host(host: str, *, loopback_allowed: bool = False) -> None:
    """AddressRefused unless the host, as written, could be a public receiver."""
    if not host.isascii():
        raise AddressRefused(
            "The host must be written in ASCII (a non-ASCII name is first turned into its "
            "xn-- form)."
        )
    if loopback_allowed and host in LOOPBACK_NAMES:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise AddressRefused("The address must be a public host, not this machine.")
    address = written_address(host)
    if address is not None and not is_public(address):
        raise AddressRefused("The address must be a public host, not a private network's.")


def _resolve(host: str, port: int, *, loopback_allowed: bool) -> str:
    """The address to connect to: every address the name resolves to must be public (a name
    with one private answer among public ones is refused, not raced)."""
    check_host(host, loopback_allowed=loopback_allowed)
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"the name {host} could not be looked up ({exc.strerror})") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in answers]
    if not addresses:
        raise OSError(f"the name {host} has no address")
    allowed_loopback = loopback_allowed and host in LOOPBACK_NAMES
    if not allowed_loopback and not all(is_public(a) for a in addresses):
        raise AddressRefused(f"{host} leads to a private network's address: not posted.")
    return str(addresses[0])


class _Guarded:
    """Connects to the checked address, and arms the overall deadline once connected."""

    host: str
    port: int
    timeout: Any
    sock: Any
    loopback_allowed: bool
    deadline: float

    def _open(self) -> socket.socket:
        address = _resolve(self.host, self.port, loopback_allowed=self.loopback_allowed)
        sock = socket.create_connection((address, self.port), self.timeout)
        # shutdown() wakes a read blocked on a receiver that never finishes its answer.
        self.timer = threading.Timer(self.deadline, _cut, [sock])
        self.timer.daemon = True
        self.timer.start()
        return sock


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: the exchange ended in time
        sock.shutdown(socket.SHUT_RDWR)


class _HTTP(_Guarded, http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = self._open()


class _HTTPS(_Guarded, http.client.HTTPSConnection):
    def connect(self) -> None:
        # The certificate is checked against the name, though the socket went to its address.
        self.sock = self._context.wrap_socket(self._open(), server_hostname=self.host)  # type: ignore[attr-defined]


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    loopback_allowed: bool,
) -> Answer:
    """POST `body` to `url`, which is never followed elsewhere (http.client follows no
    redirect); the whole exchange ends within `timeout` seconds. Raises AddressRefused for a
    private address, OSError or HTTPException for what a network or a receiver can do."""
    parts = urlsplit(url)
    kind = _HTTPS if parts.scheme == "https" else _HTTP
    kwargs: dict[str, Any] = {"timeout": timeout}
    if kind is _HTTPS:
        kwargs["context"] = ssl.create_default_context()
    connection = kind(parts.hostname or "", parts.port, **kwargs)
    connection.loopback_allowed = loopback_allowed
    connection.deadline = timeout
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(_MAX_ANSWER)
        return Answer(response.status, response.reason, response.headers)
    finally:
        timer = getattr(connection, "timer", None)
        if timer is not None:
            timer.cancel()
        connection.close()
