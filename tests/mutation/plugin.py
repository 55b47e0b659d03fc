"""The fork server: pytest collects a module's tests and sets up Django, the test database and
the catalogue once; then each mutant runs in a forked child that installs it and runs the
tests until one fails. Loaded by `python -m tests.mutation` as `-p tests.mutation.plugin`.

The parent runs the selection once unmutated first (it must pass; each test's time orders
the children's runs, fastest first, and their sum sets the timeout), tearing down after it
all but the session's fixtures, which stay set up for the children. A child reports on a
pipe: killed (and by which test), survived, or not installed; a child still running at the
timeout is killed and the mutant counted as killed (a mutant that loops forever is noticed).
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from tests.mutation.install import NotInstalled, install
from tests.mutation.operators import Mutant, mutants

MODULES: dict[str, Any] = tomllib.loads((Path(__file__).parent / "modules.toml").read_text())


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mutation")
    group.addoption("--mutate", help="modules to mutate, by their names in modules.toml, a,b")
    group.addoption("--mutate-out", help="the folder for the results, one JSON file a module")
    group.addoption("--mutate-only", default="", help="a file of 'name id' lines to run only")


class _SessionOnly:
    """Stands for "the next test" when only the session's own fixtures are to stay up."""

    def __init__(self, session: pytest.Session) -> None:
        self.session = session

    def listchain(self) -> list[pytest.Session]:
        return [self.session]


def _run(items: list[pytest.Item], stop_on_failure: bool, times: dict[str, float]) -> str | None:
    """Run the items, noting each one's time; the first to fail, or None."""
    first_failed: str | None = None
    for index, item in enumerate(items):
        # After the last, only the session's fixtures stay up (for the next run, or a child).
        following = items[index + 1] if index + 1 < len(items) else _SessionOnly(item.session)
        started = time.monotonic()
        reports = runtestprotocol(item, nextitem=following, log=False)  # type: ignore[arg-type]
        times[item.nodeid] = time.monotonic() - started
        if any(report.failed for report in reports) and first_failed is None:
            first_failed = item.nodeid
            if stop_on_failure:
                break
    return first_failed


def _selects(entries: list[str], nodeid: str) -> bool:
    """Whether a node id is one of the entries, or under one (a file, or a test's prefix)."""
    return any(
        nodeid == e or nodeid.startswith(e + "::") or ("::" in e and nodeid.startswith(e))
        for e in entries
    )


def _child(items: list[pytest.Item], module: Any, source: str, mutant: Mutant, out: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        install(module, source, mutant)
    except NotInstalled as error:
        os.write(out, json.dumps({"status": "not installed", "why": str(error)}).encode())
        os._exit(0)
    killer = _run(items, stop_on_failure=True, times={})
    result = {"status": "killed", "by": killer} if killer else {"status": "survived"}
    os.write(out, json.dumps(result).encode())
    os._exit(0)


def _one(
    items: list[pytest.Item], module: Any, source: str, mutant: Mutant, timeout: float
) -> dict[str, Any]:
    read, write = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            _child(items, module, source, mutant, write)
        finally:
            os._exit(3)
    os.close(write)
    chunks: list[bytes] = []
    timed_out = False
    while True:
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([read], [], [], left)
        if ready:
            chunk = os.read(read, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    seconds = round(time.monotonic() - started, 2)
    if timed_out:
        result: dict[str, Any] = {"status": "killed", "by": "timeout"}
    elif chunks:
        result = json.loads(b"".join(chunks))
    else:
        result = {"status": "killed", "by": "the child died"}
    return {
        "id": mutant.id,
        "line": mutant.line,
        "change": mutant.change,
        **result,
        "seconds": seconds,
    }


def _module(
    session: pytest.Session, name: str, items: list[pytest.Item], wanted: set[str] | None
) -> dict[str, Any]:
    module = importlib.import_module(MODULES[name]["module"])
    assert module.__file__
    source = Path(module.__file__).read_text()
    chosen = [m for m in mutants(source) if wanted is None or f"{name} {m.id}" in wanted]
    timeout = max(20.0, 4 * sum(TIMES[item.nodeid] for item in items) + 10)
    write = session.config.get_terminal_writer().line
    write(f"{name}: {len(chosen)} mutants, {len(items)} tests")
    results = []
    started = time.monotonic()
    for number, mutant in enumerate(chosen, 1):
        result = _one(items, module, source, mutant, timeout)
        results.append(result)
        write(f"  [{number}/{len(chosen)}] {result['status']:13} {mutant.id}  ({mutant.change})")
    return {
        "name": name,
        "module": MODULES[name]["module"],
        "file": module.__file__,
        "tests": [item.nodeid for item in items],
        "mutants_in_module": len(mutants(source)),
        "seconds": round(time.monotonic() - started, 1),
        "results": results,
    }


TIMES: dict[str, float] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests no module selects, or that run the code in a subprocess, are not run."""
    if not config.getoption("--mutate"):
        return
    names = config.getoption("--mutate").split(",")
    items[:] = [
        item
        for item in items
        if any(_selects(MODULES[n]["tests"], item.nodeid) for n in names)
        and not _selects(MODULES["skip"]["tests"], item.nodeid)
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    config = session.config
    names = config.getoption("--mutate")
    if not names or config.option.collectonly:
        return None
    only = config.getoption("--mutate-only")
    wanted = set(Path(only).read_text().splitlines()) if only else None
    everything = list(session.items)
    failed = _run(everything, stop_on_failure=False, times=TIMES)
    out = Path(config.getoption("--mutate-out"))
    if failed is not None:
        session.testsfailed = 1
        config.get_terminal_writer().line(f"the tests fail without a mutant: {failed}")
        return True
    skipped = MODULES["skip"]["tests"]
    for name in names.split(","):
        items = [
            item
            for item in everything
            if _selects(MODULES[name]["tests"], item.nodeid) and not _selects(skipped, item.nodeid)
        ]
        # The fastest tests first: a mutant is usually killed by the first test that fails.
        items.sort(key=lambda item: TIMES[item.nodeid])
        result = _module(session, name, items, wanted)
        (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    session._setupstate.teardown_exact(None)
    return True
