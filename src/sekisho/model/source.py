"""YAML text -> plain Python data, remembering the line of every node.

PyYAML's safe *composition* gives a node tree with positions; we walk it ourselves instead of
letting a constructor build dicts, so that every value keeps its line, duplicate keys are
caught (a constructor silently keeps the last one), and aliases cannot blow up or loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sekisho.domain.errors import ModelProblem

Path = tuple[str | int, ...]

MAX_BYTES = 1024 * 1024  # 1 MiB: an access model is hundreds of entries, not megabytes
MAX_NODES = 100_000  # after alias expansion; stops "billion laughs" documents
MAX_DEPTH = 64

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"  # a bare `=`; PyYAML's safe loader has no constructor


def format_path(path: Path) -> str:
    """`("groups", 3, "members", 0)` -> `groups[3].members[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass
class Parsed:
    """A document as plain data, with the 1-based line of every path that exists in it."""

    filename: str
    data: Any = None
    lines: dict[Path, int] = field(default_factory=dict)
    # The source text of scalars YAML read as something other than text (numbers, booleans,
    # dates), for hints like "put 011111111111 in quotes" (YAML 1.1 reads that as octal).
    scalar_text: dict[Path, str] = field(default_factory=dict)
    problems: list[ModelProblem] = field(default_factory=list)

    def line_of(self, path: Path) -> int:
        """The line of `path`, or of its nearest ancestor present in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1

    def has(self, path: Path) -> bool:
        return path in self.lines

    def problem(self, path: Path, rule: str, message: str) -> ModelProblem:
        return ModelProblem(self.filename, self.line_of(path), rule, message, format_path(path))

    def add(self, path: Path, rule: str, message: str) -> None:
        self.problems.append(self.problem(path, rule, message))


class _TooComplex(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _yaml_error_problem(filename: str, text: str, exc: yaml.YAMLError) -> ModelProblem:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        last_line = text.count("\n") + (0 if text.endswith("\n") else 1)
        line = max(1, min(int(exc.problem_mark.line) + 1, last_line))
        what = exc.problem or exc.context or "the text is not valid YAML"
        if exc.context and exc.context_mark is not None and exc.problem:
            opened = int(exc.context_mark.line) + 1
            if opened != line:
                what += f" ({exc.context} that starts on line {opened})"
    elif isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        what = f"character {exc.character!r} is not allowed in YAML ({exc.reason})"
    else:
        line, what = 1, str(exc)
    message = f"not valid YAML: {what}"
    if "'\\t'" in what:
        message += "; indent with spaces, not tabs"
    elif "expected a single document" in what or "another document" in what:
        message += "; keep the whole model in one document (no second `---`)"
    return ModelProblem(filename, line, "yaml_syntax", message)


def parse(text: str, filename: str = "<model>") -> Parsed:
    """Parse `text`; YAML-level problems land in `.problems` (then `.data` may be None)."""
    parsed = Parsed(filename)
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_BYTES:
        parsed.problems.append(
            ModelProblem(
                filename,
                0,
                "file_too_large",
                f"the file is {size} bytes; an access model may be at most {MAX_BYTES} bytes",
            )
        )
        return parsed
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        parsed.problems.append(_yaml_error_problem(filename, text, exc))
        return parsed
    except RecursionError:
        parsed.problems.append(
            ModelProblem(filename, 1, "yaml_too_complex", "the YAML nests too deeply")
        )
        return parsed
    if root is None:
        parsed.lines[()] = 1
        return parsed
    walker = _Walker(parsed)
    try:
        parsed.data = walker.walk(root, (), 0)
    except _TooComplex as exc:
        parsed.problems.append(ModelProblem(filename, exc.line, "yaml_too_complex", exc.message))
        parsed.data = None
    return parsed


class _Walker:
    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed
        self.constructor = SafeConstructor()
        self.budget = MAX_NODES
        self.active: set[int] = set()  # nodes on the current path: catches recursive aliases

    def walk(self, node: Node, path: Path, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooComplex(
                _line(node), f"the document expands to more than {MAX_NODES} values (aliases?)"
            )
        if depth > MAX_DEPTH:
            raise _TooComplex(_line(node), f"the YAML nests more than {MAX_DEPTH} levels deep")
        if id(node) in self.active:
            raise _TooComplex(
                _line(node), "an alias (*name) is used inside the node its anchor (&name) marks"
            )
        self.parsed.lines.setdefault(path, _line(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                self._check_tag(node, _SEQ_TAG, path)
                return [
                    self._item(child, (*path, index), depth)
                    for index, child in enumerate(node.value)
                ]
            if isinstance(node, MappingNode):
                self._check_tag(node, _MAP_TAG, path)
                return self._mapping(node, path, depth)
        finally:
            self.active.discard(id(node))
        return None  # pragma: no cover - composition yields only the three node kinds

    def _item(self, node: Node, path: Path, depth: int) -> Any:
        self.parsed.lines[path] = _line(node)
        return self.walk(node, path, depth + 1)

    def _check_tag(self, node: Node, expected: str, path: Path) -> None:
        if node.tag != expected:
            self.parsed.add(
                path, "yaml_tag", f"the YAML tag {node.tag!r} is not supported in an access model"
            )

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag == _VALUE_TAG:
            return node.value
        if node.tag != _STR_TAG:
            self.parsed.scalar_text[path] = str(node.value)
        try:
            return self.constructor.construct_object(node, deep=True)
        except ConstructorError:
            self.parsed.add(
                path, "yaml_tag", f"the YAML tag {node.tag!r} is not supported in an access model"
            )
            return node.value

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}
        merged: list[tuple[str, Node]] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, ScalarNode):
                self.parsed.problems.append(
                    ModelProblem(
                        self.parsed.filename,
                        _line(key_node),
                        "wrong_type",
                        "a key must be plain text, not a list or a mapping",
                        format_path(path),
                    )
                )
                continue
            key = str(key_node.value)
            child: Path = (*path, key)
            if key in seen:
                self.parsed.problems.append(
                    ModelProblem(
                        self.parsed.filename,
                        _line(key_node),
                        "duplicate_key",
                        f"the key {key!r} appears twice in this mapping; the first is on line "
                        f"{seen[key]}. Keep one",
                        format_path(child),
                    )
                )
                continue
            seen[key] = _line(key_node)
            self.parsed.lines[child] = _line(key_node)
            out[key] = self.walk(value_node, child, depth + 1)
        # `<<: *defaults` fills only keys the mapping does not set itself.
        for key, value_node in merged:
            if key not in out:
                child = (*path, key)
                self.parsed.lines[child] = _line(value_node)
                out[key] = self.walk(value_node, child, depth + 1)
        return out

    def _merge_sources(self, node: Node, path: Path) -> list[tuple[str, Node]]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        pairs: list[tuple[str, Node]] = []
        for source in sources:
            if not isinstance(source, MappingNode):
                self.parsed.add(path, "wrong_type", "`<<` must merge a mapping or a list of them")
                continue
            for key_node, value_node in source.value:
                if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
                    key = str(key_node.value)
                    if all(key != k for k, _ in pairs):
                        pairs.append((key, value_node))
        return pairs
