"""The shape checks themselves, on small made-up packages: they find what they should."""

from __future__ import annotations

import textwrap
from pathlib import Path

from code_shape import Source, side_effects


def package(root: Path, files: dict[str, str]) -> Source:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return Source(root)


def test_a_function_over_the_limit_is_named_with_its_length(tmp_path: Path) -> None:
    def body(indent: int) -> str:
        return "\n".join(" " * indent + f"x{i} = {i}" for i in range(59))

    text = f"def fits():\n{body(4)}\n\n\nclass C:\n    def over(self):\n{body(8)}\n        pass\n"
    source = package(tmp_path, {"pkg/__init__.py": "", "pkg/long.py": text})
    found = source.long_functions(60)
    assert [o.what for o in found] == ["C.over: 61 lines"]
    assert found[0].line == 64


def test_a_circle_counts_type_checking_and_relative_imports(tmp_path: Path) -> None:
    source = package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/svc/__init__.py": "",
            "pkg/svc/a.py": "from pkg.svc import b\n",
            "pkg/svc/b.py": "from . import c\n",
            "pkg/svc/c.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from .a import Thing
            """,
            "pkg/svc/d.py": "import pkg.svc.a\n",  # into the circle, not part of it
        },
    )
    (circle,) = source.import_cycles("pkg.svc")
    assert sorted((i.source.name, i.target) for i in circle) == [
        ("pkg.svc.a", "pkg.svc.b"),
        ("pkg.svc.b", "pkg.svc.c"),
        ("pkg.svc.c", "pkg.svc.a"),
    ]


def test_no_circle_when_imports_point_one_way(tmp_path: Path) -> None:
    source = package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    import pkg.c\n",
            "pkg/c.py": "",
        },
    )
    assert source.import_cycles("pkg") == []


def test_effects_written_by_hand_are_found_and_recorded_events_are_not(tmp_path: Path) -> None:
    source = package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/op.py": """
                from sekisho.services import timeline
                from sekisho.services.audit import record as write_audit

                def execute(self, uow, s, event):
                    uow.record(event)
                    timeline.note(s, 1, "x")
                    self._core.audit(s, event)
                    write_audit(s, event)
                    self._core.outbox.approval_needed(s, 1)
                    self._bus.publish(event)
            """,
        },
    )
    (module,) = [m for m in source.modules if m.name == "pkg.op"]
    assert sorted(o.what for o in side_effects(module)) == [
        "calls self._bus.publish(...)",
        "calls self._core.audit(...)",
        "calls timeline.note(...)",
        "calls write_audit(...)",
        "uses self._core.outbox.approval_needed",
    ]
