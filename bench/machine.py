"""What the numbers were measured on: printed at the top of RESULTS.md."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_counts() -> str:
    logical = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    return f"{logical} logical, {usable} usable by this process"


def filesystem_of(path: Path) -> str:
    """The mount (type and device) holding `path`, from /proc/mounts."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    resolved = str(path.resolve())
    best: list[str] | None = None
    for entry in mounts:
        if len(entry) < 3:
            continue
        point = entry[1]
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > len(best[1])):
            best = entry
    return f"{best[2]} ({best[0]} on {best[1]})" if best else "unknown"


def package_versions(names: list[str]) -> str:
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def load_average() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return " / ".join(f"{x:.2f}" for x in load)


def facts(data_dir: Path, postgres: str | None) -> list[tuple[str, str]]:
    """The machine and the software; None for `postgres`: not measured in this run."""
    found = [
        ("CPU (the latest run's)", f"{cpu_model()}; {cpu_counts()}"),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("SQLite", f"{sqlite3.sqlite_version} (WAL, synchronous=FULL, as sekisho opens it)"),
        ("SQLite file on", filesystem_of(data_dir)),
        (
            "packages",
            package_versions(
                ["sekisho", "fastapi", "starlette", "uvicorn", "sqlalchemy", "psycopg", "httpx"]
            ),
        ),
    ]
    if postgres is not None:
        found.insert(5, ("PostgreSQL", postgres))
    return found


def run_summary(quick: bool, started: datetime, load: str, elapsed_s: float) -> str:
    """The value of a run's row: what kind of run, on which CPU (runs kept from other days may
    have had another machine), when, the load then, how long it took."""
    stamp = started.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    kind = "quick" if quick else "full"
    return (
        f"{kind} on {cpu_model()}; started {stamp} UTC; load average {load}; "
        f"took {elapsed_s / 60:.1f} min"
    )


def now() -> datetime:
    return datetime.now(UTC)
