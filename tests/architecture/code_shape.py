"""The code's shape, read with `ast` from the source files (nothing is imported).

Each finder returns offenders as `Offence`s, which say where (file:line) and what, so a
failing test lists every place to fix.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
MAX_FUNCTION_LINES = 60


@dataclass(frozen=True, order=True)
class Offence:
    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        where = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{where}:{self.line}: {self.what}"


def report(offences: Iterable[Offence], headline: str) -> str:
    """A failure message: the headline, then one offender per line."""
    found = sorted(offences)
    return "\n".join([f"{headline} ({len(found)}):", *(f"  {o}" for o in found)])


# -- modules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    name: str  # sekisho.services.grants
    path: Path
    is_package: bool  # an __init__.py

    @property
    def tree(self) -> ast.Module:
        return parse(self.path)


@cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@dataclass(frozen=True)
class Import:
    """One import, resolved: `target` is the module imported (or imported from)."""

    source: Module
    line: int
    target: str


class Source:
    """The modules under a source root (`src/`), by dotted name."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @cached_property
    def modules(self) -> list[Module]:
        found = []
        for path in sorted(self.root.rglob("*.py")):
            parts = list(path.relative_to(self.root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found.append(Module(".".join(parts), path, is_package))
        return found

    @cached_property
    def names(self) -> frozenset[str]:
        return frozenset(m.name for m in self.modules)

    def under(self, package: str) -> list[Module]:
        return [m for m in self.modules if within(m.name, package)]

    def imports(self, module: Module) -> Iterator[Import]:
        """Every import in the module: at the top, in functions, under `if TYPE_CHECKING:`.

        `from package import name` imports the submodule `package.name` when there is one,
        else the package itself."""
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(module, node.lineno, alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    yield Import(module, node.lineno, sub if sub in self.names else base)

    def import_cycles(self, package: str) -> list[list[Import]]:
        """The import cycles among the modules of `package`: for each group of modules that
        import each other in a circle (a strongly connected component), the imports that
        make it, inside the group."""
        edges: dict[str, list[Import]] = {m.name: [] for m in self.under(package)}
        for module in self.under(package):
            for found in dict.fromkeys(self.imports(module)):  # once per line and target
                if found.target in edges and found.target != module.name:
                    edges[module.name].append(found)
        graph = {name: sorted({i.target for i in found}) for name, found in edges.items()}
        return [
            [i for name in sorted(group) for i in edges[name] if i.target in group]
            for group in _strongly_connected(graph)
            if len(group) > 1
        ]

    def long_functions(self, limit: int = MAX_FUNCTION_LINES) -> list[Offence]:
        """Functions and methods longer than `limit` lines, from `def` to their last line
        (decorators not counted, the docstring counted)."""
        found = []
        for module in self.modules:
            for node, qualname in _functions(module.tree):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    found.append(Offence(module.path, node.lineno, f"{qualname}: {length} lines"))
        return found


SOURCE = Source(SRC)


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.name.split(".")
    if not module.is_package:
        package.pop()
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _strongly_connected(graph: dict[str, list[str]]) -> list[set[str]]:
    """Groups of nodes that reach each other (a node alone is a group of one)."""
    reach = {node: _reachable(graph, node) for node in graph}
    groups: list[set[str]] = []
    placed: set[str] = set()
    for node in graph:
        if node not in placed:
            group = {node} | {other for other in reach[node] if node in reach[other]}
            placed |= group
            groups.append(group)
    return groups


def _reachable(graph: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, []))
    return seen


# -- functions ------------------------------------------------------------------------------


def _functions(
    tree: ast.AST, prefix: str = ""
) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node, prefix + node.name
            yield from _functions(node, f"{prefix}{node.name}.<locals>.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


# -- calls ------------------------------------------------------------------------------------


def dotted(node: ast.AST) -> str | None:
    """`a.b.c` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def side_effects(module: Module) -> Iterator[Offence]:
    """Where a module writes a side effect by hand instead of recording a domain event:
    a call of `timeline.note`, `audit.record`, `<anything>.audit(...)` or
    `<anything>.publish(...)`, any use of `<anything>.outbox.<something>`, and calls of
    `note`/`record` imported from the timeline or audit modules."""
    by_hand = _imported_side_effects(module)
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call):
            what = _side_effect_call(node.func, by_hand)
            if what:
                yield Offence(module.path, node.lineno, f"calls {what}(...)")
        elif isinstance(node, ast.Attribute) and _is_outbox(node.value):
            chain = dotted(node) or f"(...).outbox.{node.attr}"
            yield Offence(module.path, node.lineno, f"uses {chain}")


def _side_effect_call(func: ast.expr, by_hand: set[str]) -> str | None:
    if isinstance(func, ast.Name):
        return func.id if func.id in by_hand else None
    if not isinstance(func, ast.Attribute):
        return None
    owner = dotted(func.value) or "(...)"
    called = f"{owner}.{func.attr}"
    if func.attr in ("audit", "publish"):
        return called
    if func.attr == "note" and owner.endswith("timeline"):
        return called
    if func.attr == "record" and owner.rsplit(".", 1)[-1].lstrip("_") == "audit":
        return called
    return None


def _is_outbox(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name.lstrip("_") == "outbox"


def _imported_side_effects(module: Module) -> set[str]:
    """Local names bound to `note` or `record` of the timeline or audit modules."""
    names = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.ImportFrom) and node.module in (
            "sekisho.services.timeline",
            "sekisho.services.audit",
        ):
            for alias in node.names:
                if alias.name in ("note", "record"):
                    names.add(alias.asname or alias.name)
    return names
