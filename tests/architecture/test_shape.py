"""Issue 10's shape, checked on the source with `ast`: nothing is imported.

A check that does not hold yet is marked `xfail(strict=True)`: the suite stays green while the
refactor is under way, and the moment the shape holds the test passes, strict xfail fails it,
and the mark must go (so a check, once met, guards the shape for good).
"""

from __future__ import annotations

import pytest
from code_shape import (
    MAX_FUNCTION_LINES,
    SOURCE,
    Offence,
    report,
    side_effects,
    within,
)

SERVICES = "sekisho.services"
# Packages whose modules may write timeline rows: the store, and the effect handlers that
# turn recorded domain events into them (migrations live in the store).
TIMELINE_WRITERS = ("sekisho.store", "sekisho.effects")
TIMELINE = "sekisho.services.timeline"


def test_the_checks_read_the_real_source() -> None:
    """Guards every check below against passing on an empty or misplaced tree."""
    names = SOURCE.names
    for expected in ("sekisho.bootstrap", "sekisho.api.app", "sekisho.operations.requests"):
        assert expected in names, f"{expected} not found under {SOURCE.root}"
    assert len(SOURCE.under(SERVICES)) > 10


def test_no_function_is_over_60_lines() -> None:
    offences = SOURCE.long_functions(MAX_FUNCTION_LINES)
    if offences:
        pytest.fail(report(offences, f"functions over {MAX_FUNCTION_LINES} lines"), pytrace=False)


def test_services_import_each_other_in_no_circle() -> None:
    cycles = SOURCE.import_cycles(SERVICES)
    message = [f"{len(cycles)} import circle(s) among {SERVICES} (TYPE_CHECKING included):"]
    for imports in cycles:
        modules = sorted({i.source.name for i in imports})
        message.append(f"  a circle through {len(modules)} modules: {', '.join(modules)}")
        message += [f"    {Offence(i.source.path, i.line, f'imports {i.target}')}" for i in imports]
    if cycles:
        pytest.fail("\n".join(message), pytrace=False)


def test_the_api_imports_neither_the_web_nor_the_gateway() -> None:
    offences = [
        Offence(i.source.path, i.line, f"{i.source.name} imports {i.target}")
        for module in SOURCE.under("sekisho.api")
        for i in SOURCE.imports(module)
        if within(i.target, "sekisho.web") or within(i.target, "sekisho.gateway")
    ]
    if offences:
        pytest.fail(report(offences, "api/ imports sekisho.web or sekisho.gateway"), pytrace=False)


def test_operations_record_events_instead_of_writing_effects() -> None:
    offences = [o for module in SOURCE.under("sekisho.operations") for o in side_effects(module)]
    if offences:
        headline = (
            "operations writing timeline, audit, outbox or bus effects by hand "
            "(record a domain event on the unit of work instead)"
        )
        pytest.fail(report(offences, headline), pytrace=False)


def test_only_the_store_and_the_effects_import_the_timeline() -> None:
    offences = [
        Offence(i.source.path, i.line, f"{i.source.name} imports {i.target}")
        for module in SOURCE.modules
        if not any(within(module.name, allowed) for allowed in TIMELINE_WRITERS)
        for i in SOURCE.imports(module)
        if i.target == TIMELINE and module.name != TIMELINE
    ]
    if offences:
        headline = f"imports of {TIMELINE} outside {', '.join(TIMELINE_WRITERS)}"
        pytest.fail(report(offences, headline), pytrace=False)
