"""RESULTS.md: machine facts, then one section (with its table) per measurement."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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

    def markdown(self) -> str:
        parts = [f"## {self.title}", self.method.strip()]
        parts += [t.markdown() for t in self.tables if t.rows]
        if self.notes:
            parts.append("\n".join(f"- {n}" for n in self.notes))
        return "\n\n".join(parts)


def write(
    path: Path, *, title: str, preface: str, facts: list[tuple[str, str]], sections: list[Section]
) -> None:
    machine = Table(["fact", "value"], [[k, v] for k, v in facts])
    parts = [f"# {title}", preface.strip(), "## The machine", machine.markdown()]
    parts += [s.markdown() for s in sections]
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
