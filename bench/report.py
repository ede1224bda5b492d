"""RESULTS.md: machine facts, then one section (with its table) per measurement.

Every section belongs to a measurement (its `key`, the name `--only` takes) and is written
behind a marker line `<!-- bench:KEY -->`. Writing merges with the file already there: the
sections of the measurements this run made replace theirs, the others are kept as they were,
so `python -m bench --only gateway` leaves the core's sections in place. The machine table
merges the same way: facts this run states replace the rows of the same name, and each run
adds one row, `run: KEYS`, saying when it measured which measurements and how long it took.
A file written before the markers existed is read by its headings (`legacy_key`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"^<!-- bench:([\w-]+) -->$")
MACHINE = "The machine"
RUN = "run: "
# Rows a file written before per-run rows existed carries for its single run.
LEGACY_RUN_ROWS = ("date (UTC)", "load average at start (1/5/15 min)", "run")


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def markdown(self) -> str:
        lines = [
            "| " + " | ".join(self.columns) + " |",
            "| " + " | ".join("---" for _ in self.columns) + " |",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Section:
    title: str
    method: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    key: str = ""  # the measurement it reports (an `--only` name)

    def markdown(self) -> str:
        parts = [f"## {self.title}", self.method.strip()]
        parts += [t.markdown() for t in self.tables if t.rows]
        if self.notes:
            parts.append("\n".join(f"- {n}" for n in self.notes))
        body = "\n\n".join(parts)
        return f"<!-- bench:{self.key} -->\n{body}" if self.key else body


@dataclass
class Block:
    """A section as found in an existing file: its measurement and its text, verbatim."""

    key: str
    text: str


def run_fact(keys: list[str], summary: str) -> tuple[str, str]:
    """The machine-table row of one run: which measurements it made, when, how long."""
    return RUN + ", ".join(keys), summary


def write(
    path: Path,
    *,
    title: str,
    preface: str,
    facts: list[tuple[str, str]],
    sections: list[Section],
    measured: list[str],
    order: list[str],
    legacy_key: Callable[[str], str | None] = lambda _heading: None,
) -> None:
    """Write `path`: this run's sections (for the `measured` keys) merged with the others.

    `facts` must hold this run's `run_fact`. Sections are ordered by their key's place in
    `order`, this run's in the order given.
    """
    old_facts: list[tuple[str, str]] = []
    kept: list[Block] = []
    if path.exists():
        old_facts, blocks = parse(path.read_text(encoding="utf-8"), legacy_key)
        kept = [b for b in blocks if b.key not in measured]
        old_facts = _retire_runs(
            old_facts, measured, sorted({b.key for b in kept}, key=order_of(order))
        )
    merged = _merge_facts(old_facts, facts)
    rank = order_of(order)
    entries: list[tuple[int, int, str]] = [
        (rank(b.key), i, b.text.strip()) for i, b in enumerate(kept)
    ]
    entries += [(rank(s.key), len(kept) + i, s.markdown()) for i, s in enumerate(sections)]
    machine = Table(["fact", "value"], [[k, v] for k, v in merged])
    parts = [f"# {title}", preface.strip(), f"## {MACHINE}", machine.markdown()]
    parts += [text for _, _, text in sorted(entries)]
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def order_of(order: list[str]) -> Callable[[str], int]:
    return lambda key: order.index(key) if key in order else len(order)


def parse(
    text: str, legacy_key: Callable[[str], str | None]
) -> tuple[list[tuple[str, str]], list[Block]]:
    """The machine table's rows and the sections of a RESULTS.md.

    A section's key is its marker's; without one, `legacy_key(heading)`; failing that, the
    key of the section before it (a continuation, like a profile after its measurement).
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("## ")]
    facts: list[tuple[str, str]] = []
    blocks: list[Block] = []
    previous = ""
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        body = lines[start:end]
        while body and (not body[-1].strip() or MARKER.match(body[-1])):
            body.pop()  # the next section's marker and the blank lines before it
        heading = lines[start][3:].strip()
        if heading == MACHINE:
            facts = _table_rows(body)
            continue
        marker = _marker_before(lines, start)
        key = marker or legacy_key(heading) or previous or "unknown"
        previous = key
        blocks.append(Block(key, "\n".join([f"<!-- bench:{key} -->", *body])))
    return facts, blocks


def _marker_before(lines: list[str], start: int) -> str | None:
    i = start - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    found = MARKER.match(lines[i]) if i >= 0 else None
    return found.group(1) if found else None


def _table_rows(body: list[str]) -> list[tuple[str, str]]:
    rows = [line for line in body if line.startswith("|")][2:]  # past header and rule
    found = []
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
        if len(cells) >= 2:
            found.append((cells[0], " | ".join(cells[1:])))
    return found


def _retire_runs(
    facts: list[tuple[str, str]], measured: list[str], kept_keys: list[str]
) -> list[tuple[str, str]]:
    """Old run rows lose the measurements this run replaces (and go when none is left)."""
    legacy = {k: v for k, v in facts if k in LEGACY_RUN_ROWS}
    rows: list[tuple[str, str]] = []
    legacy_keys = set(kept_keys)
    for name, value in facts:
        if name in LEGACY_RUN_ROWS:
            continue
        if name.startswith(RUN):
            keys = [k for k in name[len(RUN) :].split(", ") if k not in measured]
            legacy_keys -= set(name[len(RUN) :].split(", "))
            if keys:
                rows.append(run_fact(keys, value))
            continue
        rows.append((name, value))
    if legacy and legacy_keys:  # one run, written before run rows had keys
        when = legacy.get("date (UTC)", "?")
        load = legacy.get("load average at start (1/5/15 min)", "?")
        summary = f"{legacy.get('run', '?')}; started {when} UTC; load average {load}"
        rows.append(run_fact(sorted(legacy_keys, key=kept_keys.index), summary))
    return rows


def _merge_facts(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Old rows in their places, updated by new rows of the same name; new names after.
    Run rows come last, oldest first."""
    updates = dict(new)
    merged = [(k, updates.pop(k, v)) for k, v in old if not k.startswith(RUN)]
    merged += [(k, v) for k, v in new if k in updates and not k.startswith(RUN)]
    merged += [(k, v) for k, v in old if k.startswith(RUN)]
    merged += [(k, v) for k, v in new if k.startswith(RUN)]
    return merged
