"""`bin/tracker probe`: exit 0 when this machine's web server says it is alive
(/health/live/: the process answers and reaches the database), 1 otherwise. For a
container's health check or a supervisor; a load balancer asks /health/live/ itself.

It asks as the site (the first of ALLOWED_HOSTS) over the loopback address, so production's
host check passes; /health/ is exempt from the HTTPS redirect."""

from __future__ import annotations

import http.client
import os
import sys

from tracker.env import Env, web_address


def site_host(allowed: list[str]) -> str:
    for host in allowed:
        if host != "*":
            return host.lstrip(".")
    return "localhost"


def main() -> int:
    env = Env(os.environ)
    address = web_address(env)
    host = site_host(env.list("ALLOWED_HOSTS"))
    env.check()
    listen, port = address.rsplit(":", 1)
    target = "127.0.0.1" if listen in ("0.0.0.0", "", "[::]") else listen.strip("[]")
    try:
        conn = http.client.HTTPConnection(target, int(port), timeout=10)
        conn.request("GET", "/health/live/", headers={"Host": host, "Accept": "application/json"})
        status = conn.getresponse().status
    except OSError as exc:
        print(f"web server at {target}:{port} does not answer: {exc}", file=sys.stderr)
        return 1
    print(f"/health/live/: {status}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
