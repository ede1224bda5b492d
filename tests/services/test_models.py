"""The access model: loading a version (audited, heard by every node), and reading the one in
force once per transaction while another process may load a new one at any moment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy
from flows import SYSTEM, audit_rows, counts, granted

from sekisho.bootstrap import Core
from sekisho.domain.errors import Conflict, InvalidModel
from sekisho.services.events import Event
from sekisho.store.db import Database
from support import EXAMPLE_TEXT

NEW_USER = "  - { name: newcomer01, display_name: New Comer, email: newcomer01@example.com }\n"


def with_newcomer() -> str:
    """The example model with one more user: a new version."""
    head, users, rest = EXAMPLE_TEXT.partition("users:\n")
    assert users, "the example model lists its users"
    return head + users + NEW_USER + rest


@contextmanager
def version_reads() -> Iterator[list[int]]:
    """Per transaction begun while the block runs: how often it asked for the version in
    force (the statement that orders the versions; the text is read only on a cache miss)."""
    per_transaction: list[int] = []
    current: dict[int, int] = {}  # connection -> its transaction's index

    def on_begin(conn: Any) -> None:
        current[id(conn)] = len(per_transaction)
        per_transaction.append(0)

    def on_statement(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM access_models ORDER BY" in statement and id(conn) in current:
            per_transaction[current[id(conn)]] += 1

    sqlalchemy.event.listen(sqlalchemy.Engine, "begin", on_begin)
    sqlalchemy.event.listen(sqlalchemy.Engine, "before_cursor_execute", on_statement)
    try:
        yield per_transaction
    finally:
        sqlalchemy.event.remove(sqlalchemy.Engine, "before_cursor_execute", on_statement)
        sqlalchemy.event.remove(sqlalchemy.Engine, "begin", on_begin)


def heard(core: Core) -> list[Event]:
    events: list[Event] = []
    core.bus.subscribe(events.append)
    return events


def test_loading_a_new_version_is_audited_and_heard(core: Core) -> None:
    events = heard(core)
    before = core.models.current()[0]
    loaded = core.models.load(with_newcomer(), "jump-account.yaml", SYSTEM)
    assert loaded.changed
    assert loaded.id > before
    entry = audit_rows(core)[-1]
    assert (entry.action, entry.actor, entry.source) == ("model.loaded", "sekisho:test", "test")
    assert entry.detail == {"sha256": loaded.sha256, "source_name": "jump-account.yaml"}
    assert [(e.name, e.data) for e in events] == [("model.loaded", {"sha256": loaded.sha256})]
    assert core.models.current()[0] == loaded.id
    assert core.models.model().user("newcomer01") is not None


def test_the_text_in_force_is_no_new_version(core: Core) -> None:
    events = heard(core)
    before = counts(core)
    again = core.models.load(EXAMPLE_TEXT, "again.yaml", SYSTEM)
    assert not again.changed
    assert again.id == core.models.current()[0]
    assert counts(core) == before
    assert events == []


def test_an_invalid_model_changes_nothing(core: Core) -> None:
    events = heard(core)
    before = counts(core)
    with pytest.raises(InvalidModel):
        core.models.load("users: [", "broken.yaml", SYSTEM)
    assert counts(core) == before
    assert events == []


def test_a_transaction_asks_for_the_version_in_force_once(core: Core) -> None:
    with version_reads() as reads, core.db.read() as s:
        first = core.models.current(s)
        for _ in range(5):
            assert core.models.current(s) == first
            assert core.models.model(s) is first[1]
    assert reads == [1]


def test_filing_and_approving_ask_for_the_version_once_per_transaction(core: Core) -> None:
    with version_reads() as reads:
        granted(core)
    assert reads
    assert max(reads) == 1


def test_a_version_another_process_loads_is_in_force_at_the_next_transaction(
    core: Core, db_url: str
) -> None:
    other = Core(
        db=Database(db_url), settings=core.settings, provider=core.provider, secrets=core.secrets
    )
    try:
        with core.db.read() as s:
            before = core.models.current(s)
        loaded = other.models.load(with_newcomer(), "elsewhere.yaml", SYSTEM)
        model_id, model = core.models.current()
        assert (model_id, model.user("newcomer01") is not None) == (loaded.id, True)
        assert model_id != before[0]
    finally:
        other.db.dispose()


def test_without_a_model_the_reader_says_how_to_load_one(core: Core) -> None:
    with core.db.write() as s:
        s.execute(sqlalchemy.text("DELETE FROM access_models"))
    fresh = Core(db=core.db, settings=core.settings, provider=core.provider, secrets=core.secrets)
    with pytest.raises(Conflict, match="no access model is loaded"):
        fresh.models.current()
