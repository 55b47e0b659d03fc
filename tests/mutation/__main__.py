"""`make mutation`: mutation testing of the law modules (issue 31).

    python -m tests.mutation                       every module in modules.toml, every mutant
    python -m tests.mutation penalties rules       those modules
    python -m tests.mutation --changed-since REV   the modules whose code or tests changed since
                                                   REV, in full; the others by a fixed sample
    python -m tests.mutation --sample 10           a fixed sample of each module's mutants
    python -m tests.mutation --report-only         the last run's scores again (after editing
                                                   equivalent.toml)

One pytest session (SQLite, its own var/) sets up once and forks a child per mutant (see
plugin.py). Results: var/mutation/<module>.json and var/mutation/summary.json; a table of
scores and the survivors (file:line, the change) on stdout. Score = killed / (mutants -
equivalent - not installed): an equivalent mutant of equivalent.toml is not scored, an
accepted survivor counts as alive. It fails when a module is below 95%, or when a survivor
is not in equivalent.toml with its reason.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from tests.mutation.operators import mutants

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MODULES: dict[str, Any] = tomllib.loads((HERE / "modules.toml").read_text())
NAMES = [name for name in MODULES if name != "skip"]
THRESHOLD = 95.0


def listed() -> dict[str, dict[str, dict[str, str]]]:
    """equivalent.toml: module name -> mutant id -> {kind, change, why}."""
    return tomllib.loads((HERE / "equivalent.toml").read_text())


def _source(name: str) -> Path:
    return ROOT / (MODULES[name]["module"].replace(".", "/") + ".py")


def changed_since(rev: str) -> set[str] | None:
    """The modules whose source or selected tests changed since `rev` (committed or not), or
    None if git cannot say (no such revision: a shallow clone)."""
    diff = subprocess.run(
        ["git", "diff", "--name-only", rev, "--"], cwd=ROOT, capture_output=True, text=True
    )
    if diff.returncode != 0:
        return None
    files = set(diff.stdout.split())
    changed = set()
    for name in NAMES:
        mine = {str(_source(name).relative_to(ROOT)), *MODULES[name]["tests"]}
        if files & mine:
            changed.add(name)
    return changed


def sample(name: str, size: int) -> list[str]:
    """A fixed sample: the `size` ids first in the order of their hashes (the same every run
    while the module is unchanged, and spread over the whole module)."""
    ids = [m.id for m in mutants(_source(name).read_text())]
    return sorted(ids, key=lambda i: hashlib.sha256(f"{name} {i}".encode()).hexdigest())[:size]


def run(names: list[str], only: list[str] | None, out: Path) -> float:
    tests = sorted({t for name in names for t in MODULES[name]["tests"]})
    paths = sorted({t.split("::")[0] for t in tests if (ROOT / t.split("::")[0]).exists()})
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "tests.mutation.plugin",
        f"--mutate={','.join(names)}",
        f"--mutate-out={out}",
        *paths,
    ]
    if only is not None:
        (out / "only.txt").write_text("\n".join(only) + "\n")
        args.append(f"--mutate-only={out / 'only.txt'}")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.setdefault("TRACKER_VAR_DIR", str(out / "var"))
    env["PYTHONUNBUFFERED"] = "1"  # the progress lines as they come, even into a file
    started = time.monotonic()
    code = subprocess.run(args, cwd=ROOT, env=env).returncode
    if code != 0:
        sys.exit(f"the mutation run failed (pytest exit {code})")
    return time.monotonic() - started


def score(name: str, data: dict[str, Any], known: dict[str, dict[str, str]]) -> dict[str, Any]:
    results = data["results"]
    counts = {"killed": 0, "survived": 0, "equivalent": 0, "not installed": 0}
    survivors = []
    for r in results:
        entry = known.get(r["id"])
        if r["status"] == "survived" and entry and entry.get("kind") == "equivalent":
            counts["equivalent"] += 1
        else:
            counts[r["status"]] += 1
        if r["status"] == "survived":
            survivors.append({**r, "listed": entry})
    scored = counts["killed"] + counts["survived"]
    alive = {r["id"] for r in survivors}
    ran = {r["id"] for r in results}
    return {
        # Listed, yet killed this run (or gone from the module): the entry is out of date.
        "stale": sorted(i for i in known if i in ran and i not in alive)
        + (
            sorted(i for i in known if i not in ran)
            if len(results) == data["mutants_in_module"]
            else []
        ),
        "module": data["module"],
        "mutants": len(results),
        "of": data["mutants_in_module"],
        **counts,
        "score": round(100 * counts["killed"] / scored, 1) if scored else 100.0,
        "seconds": data["seconds"],
        "survivors": survivors,
        "file": str(Path(data["file"]).relative_to(ROOT)),
    }


def report(summary: dict[str, dict[str, Any]], seconds: float) -> bool:
    print()
    print("| module | killed | survived | equivalent | not installed | score | time |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s in summary.values():
        whole = "" if s["mutants"] == s["of"] else f" (sample of {s['of']})"
        print(
            f"| {s['module']} | {s['killed']}/{s['mutants']}{whole} | {s['survived']} | "
            f"{s['equivalent']} | {s['not installed']} | {s['score']}% | {s['seconds']:.0f} s |"
        )
    if seconds:
        print(f"\nwhole run: {seconds / 60:.1f} min")
    good = True
    for name, s in summary.items():
        if s["score"] < THRESHOLD:
            good = False
            print(f"\n{name}: {s['score']}% is below {THRESHOLD}%")
        for r in s["survivors"]:
            entry = r["listed"]
            if entry and entry.get("kind") == "equivalent":
                continue
            if entry:
                why = f"accepted: {entry['why']}"
            else:
                why = "NOT LISTED in tests/mutation/equivalent.toml"
                good = False
            print(f"  {s['file']}:{r['line']}  [{name}] {r['id']}  {r['change']}  -- {why}")
        for mutant_id in s["stale"]:
            print(f"  [{name}] {mutant_id}: listed in equivalent.toml but killed or gone")
    return good


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=", ".join(NAMES))
    parser.add_argument("--sample", type=int, help="a fixed sample of N mutants a module")
    parser.add_argument("--changed-since", metavar="REV")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "mutation")
    parser.add_argument(
        "--report-only", action="store_true", help="score the last run's results again"
    )
    options = parser.parse_args()
    names = options.modules or NAMES
    if unknown := set(names) - set(NAMES):
        parser.error(f"no such module in modules.toml: {', '.join(sorted(unknown))}")
    only: list[str] | None = None
    if options.changed_since:
        changed = changed_since(options.changed_since) or set()
        size = options.sample or 10
        only = [
            f"{name} {m.id}"
            for name in names
            for m in mutants(_source(name).read_text())
            if name in changed
        ] + [f"{name} {i}" for name in names if name not in changed for i in sample(name, size)]
    elif options.sample:
        only = [f"{name} {i}" for name in names for i in sample(name, options.sample)]
    options.out.mkdir(parents=True, exist_ok=True)
    seconds = 0.0 if options.report_only else run(names, only, options.out)
    known = listed()
    summary = {
        name: score(
            name, json.loads((options.out / f"{name}.json").read_text()), known.get(name, {})
        )
        for name in names
    }
    (options.out / "summary.json").write_text(json.dumps(summary, indent=1))
    sys.exit(0 if report(summary, seconds) else 1)


if __name__ == "__main__":
    main()
