"""The load test's locustfile (`make load`, not part of the suite) kept from rotting: it imports,
its users have tasks, and every URL it requests is one of its PAGES, each a named route."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from django.urls import resolve

LOCUSTFILE = Path(__file__).resolve().parent / "load" / "locustfile.py"
# Locust patches the standard library (gevent) as it is imported: not in the suite's process.
DESCRIBE = """
import json
from tests.load import locustfile as f
users = {
    u.__name__: list(dict.fromkeys(t.__name__ for t in u.tasks))
    for u in (f.ComplianceStaff, f.Manager, f.Auditor)
}
print(json.dumps({"pages": f.PAGES, "users": users}))
"""


def test_the_locustfile_imports_and_its_users_have_tasks() -> None:
    out = subprocess.run(
        [sys.executable, "-c", DESCRIBE], capture_output=True, text=True, check=True, timeout=60
    )
    described = json.loads(out.stdout.strip().splitlines()[-1])
    assert described["users"] == {
        "ComplianceStaff": ["my_work", "changelist", "move_one_on", "add_evidence"],
        "Manager": ["dashboard", "service_dashboard"],
        "Auditor": ["api_page", "export_a_provider", "export_everything"],
    }
    for name, path in described["pages"].items():
        match = resolve(path.format(pk=1))
        assert match.url_name, f"{name}: {path} reaches no named route"


def test_the_locustfile_names_no_url_outside_its_pages() -> None:
    tree = ast.parse(LOCUSTFILE.read_text())
    pages = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "PAGES" for t in node.targets)
    )
    in_pages = {id(node) for node in ast.walk(pages)}
    stray = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("/")
        and id(node) not in in_pages
    ]
    assert stray == []
