"""The users of `make load` (tests/load/run.py starts Locust on this file): compliance staff
working the register in the admin, managers on the dashboard, auditors reading the API and
exporting. Each signs in with a password and posts forms with the CSRF token, as a browser
does. Every URL comes from PAGES (tests/test_load.py resolves them), and each request is
reported under its page's name.

The accounts come from LOAD_ACCOUNTS (JSON: role -> usernames) and LOAD_PASSWORD, which
tests/load/prepare.py made.

The clock starts once every user has signed in (LOAD_DURATION seconds then, and Locust stops):
a sign-in is Django's 1,000,000 PBKDF2 iterations, by design, paid once a working day; left in
the window, a ramp's sign-ins were a third of its CPU.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import gevent
from locust import HttpUser, between, task
from locust.env import Environment

PAGES = {
    "sign in": "/admin/login/",
    "my work": "/admin/obligations/obligation/my-work/",
    "admin changelist": "/admin/obligations/obligation/",
    "obligation page": "/admin/obligations/obligation/{pk}/change/",
    "transition": "/admin/obligations/obligation/{pk}/transition/",
    "evidence upload": "/admin/obligations/obligation/{pk}/evidence/",
    "dashboard": "/dashboard/",
    "service dashboard": "/dashboard/services/{pk}/",
    "api page": "/api/v1/obligations/",
    "csv export": "/api/v1/obligations/export/csv/",
}

# Compliance staff move their obligations round the workflow's loop, all of it theirs to do:
# start, submit for review (which mails the reviewers through the worker), send back, start.
WORK_TARGETS = ("in_progress", "ready_for_review", "sent_back")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TARGET = re.compile(r'name="to" value="([a-z_]+)"')
# A page's messages, shown after each post (Django's messages framework).
MESSAGE_ERROR = re.compile(r'<li class="error">([^<]*)</li>')

_turns: dict[str, itertools.count[int]] = {}
_signed_in = itertools.count(1)

# Production marks its cookies Secure; browsers send those to http://127.0.0.1 (a trustworthy
# origin), Python's cookie jars only over HTTPS. requests makes a new jar for each request, so
# every jar's policy is told (this process is Locust's alone).
DefaultCookiePolicy.return_ok_secure = lambda self, cookie, request: True  # type: ignore[method-assign]


def url(name: str, **parts: object) -> str:
    return PAGES[name].format(**parts)


def links_to(name: str, html: str) -> list[int]:
    """The ids in the page's links to one of PAGES."""
    pattern = re.escape(PAGES[name]).replace(re.escape("{pk}"), r"(\d+)")
    return [int(pk) for pk in re.findall(pattern, html)]


def next_account(role: str) -> str:
    """The role's accounts in turn, so that concurrent users are different people."""
    names = json.loads(os.environ["LOAD_ACCOUNTS"])[role]
    turn = next(_turns.setdefault(role, itertools.count()))
    return str(names[turn % len(names)])


def signed_in(environment: Environment) -> None:
    """Count a user in; once all are, start the measured window and end it on time."""
    runner = environment.runner
    if runner is None or next(_signed_in) != runner.target_user_count:
        return
    environment.stats.reset_all()
    gevent.spawn_later(float(os.environ["LOAD_DURATION"]), runner.quit)


def small_pdf(n: int) -> bytes:
    """A few hundred bytes of PDF, different each time (identical content is one stored file)."""
    return (
        b"%PDF-1.4\n% load test evidence " + str(n).encode() + b"\n" + b"% policy text\n" * 20
    ) + b"%%EOF\n"


class Browser(HttpUser):
    """Signs in through the admin's login form on start, as a person in a browser would."""

    abstract = True
    role = ""
    wait_time = between(2, 6)

    def on_start(self) -> None:
        self.username = next_account(self.role)
        page = self.client.get(url("sign in"), name="sign in")
        response = self.client.post(
            url("sign in"),
            data={
                "username": self.username,
                "password": os.environ["LOAD_PASSWORD"],
                "csrfmiddlewaretoken": self.csrf(page.text),
            },
            name="sign in",
            allow_redirects=False,
        )
        if response.status_code != 302:
            raise RuntimeError(f"{self.username} could not sign in ({response.status_code})")
        signed_in(self.environment)

    def csrf(self, html: str) -> str:
        found = CSRF.search(html)
        if not found:
            raise RuntimeError("no CSRF token on the page")
        return found.group(1)

    def post_form(self, name: str, pk: int, page_html: str, **form: Any) -> None:
        """Post a form of the obligation page, then load the page it sends back to and check
        its message: a refused post is a 302 too."""
        files = form.pop("files", None)
        with self.client.post(
            url(name, pk=pk),
            data={"csrfmiddlewaretoken": self.csrf(page_html), **form},
            files=files,
            name=name,
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"{response.status_code} instead of a redirect")
                return
        with self.client.get(
            url("obligation page", pk=pk), name="obligation page", catch_response=True
        ) as page:
            refused = MESSAGE_ERROR.search(page.text or "")
            if refused and "changed this obligation first" not in refused.group(1):
                page.failure(f"{name} refused: {refused.group(1)}")


class ComplianceStaff(Browser):
    """Works the register: My work, the list, an obligation's page, its workflow, evidence."""

    role = "compliance"
    weight = 5

    def on_start(self) -> None:
        super().on_start()
        self.mine: list[int] = []
        self.my_work()

    @task(3)
    def my_work(self) -> None:
        page = self.client.get(url("my work"), name="my work")
        found = links_to("obligation page", page.text)
        if found:
            self.mine = found

    @task(2)
    def changelist(self) -> None:
        self.client.get(url("admin changelist"), name="admin changelist")

    def open_obligation(self) -> tuple[int, str] | None:
        if not self.mine:
            return None
        pk = random.choice(self.mine)
        page = self.client.get(url("obligation page", pk=pk), name="obligation page")
        return (pk, page.text) if page.ok else None

    @task(3)
    def move_one_on(self) -> None:
        opened = self.open_obligation()
        if opened is None:
            return
        pk, html = opened
        offered = [t for t in TARGET.findall(html) if t in WORK_TARGETS]
        if offered:
            to = offered[0]
            reason = "More detail needed (load test)." if to == "sent_back" else ""
            self.post_form("transition", pk, html, to=to, reason=reason)

    @task(1)
    def add_evidence(self) -> None:
        opened = self.open_obligation()
        # Evidence belongs to an open cycle: one the workflow still offers them a move on.
        if opened is None or not set(TARGET.findall(opened[1])) & set(WORK_TARGETS):
            return
        pk, html = opened
        n = random.getrandbits(48)
        self.post_form(
            "evidence upload",
            pk,
            html,
            title=f"Policy review {n}",
            files={"file": (f"policy-{n}.pdf", small_pdf(n), "application/pdf")},
        )


class Manager(Browser):
    """Reads the dashboard, now and then one service's."""

    role = "manager"
    weight = 3

    @task(4)
    def dashboard(self) -> None:
        page = self.client.get(url("dashboard"), name="dashboard")
        self.services = links_to("service dashboard", page.text)

    @task(1)
    def service_dashboard(self) -> None:
        services = getattr(self, "services", [])
        if services:
            self.client.get(
                url("service dashboard", pk=random.choice(services)), name="service dashboard"
            )


class Auditor(Browser):
    """Reads the register through the API (signed in, as the browsable API is) and exports it:
    usually one provider's, now and then the whole register."""

    role = "auditor"
    weight = 2

    @task(5)
    def api_page(self) -> None:
        page = self.client.get(url("api page"), params={"overdue": "true"}, name="api page")
        rows = page.json().get("results", []) if page.ok else []
        self.providers = sorted({row["provider_id"] for row in rows})

    @task(2)
    def export_a_provider(self) -> None:
        providers = getattr(self, "providers", [])
        if providers:
            self.export({"provider": random.choice(providers)}, "csv export (one provider)")

    @task(1)
    def export_everything(self) -> None:
        self.export({}, "csv export (whole register)")

    def export(self, params: dict[str, Any], name: str) -> None:
        # Read whole before the clock stops (streamed, Locust would time the first byte).
        with self.client.get(
            url("csv export"), params=params, name=name, catch_response=True
        ) as response:
            if response.ok and response.content.count(b"\n") < 2:
                response.failure("an export with no rows")
