"""The access model: loading a version (audited, heard by every node), and reading the one in
force once per transaction while another process may load a new one at any moment."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy
from flows import SYSTEM, audit_rows, counts, granted

from sekisho.bootstrap import Core
from sekisho.domain.errors import Conflict, InvalidModel
from sekisho.services.events import Event
from sekisho.services.models import LoadedModel
from sekisho.store.db import Database
from support import EXAMPLE_TEXT, version_reads

NEW_USER = "  - { name: newcomer01, display_name: New Comer, email: newcomer01@example.com }\n"


def with_newcomer() -> str:
    """The example model with one more user: a new version."""
    head, users, rest = EXAMPLE_TEXT.partition("users:\n")
    assert users, "the example model lists its users"
    return head + users + NEW_USER + rest


@pytest.fixture
def other(core: Core, db_url: str) -> Iterator[Core]:
    """Another node on the same database: its own engines and caches."""
    node = Core(
        db=Database(db_url), settings=core.settings, provider=core.provider, secrets=core.secrets
    )
    yield node
    node.db.dispose()


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
    core: Core, other: Core
) -> None:
    with core.db.read() as s:
        before = core.models.current(s)
    loaded = other.models.load(with_newcomer(), "elsewhere.yaml", SYSTEM)
    model_id, model = core.models.current()
    assert (model_id, model.user("newcomer01") is not None) == (loaded.id, True)
    assert model_id != before[0]


def test_without_a_model_the_reader_says_how_to_load_one(core: Core) -> None:
    with core.db.write() as s:
        s.execute(sqlalchemy.text("DELETE FROM access_models"))
    fresh = Core(db=core.db, settings=core.settings, provider=core.provider, secrets=core.secrets)
    with pytest.raises(Conflict, match="no access model is loaded"):
        fresh.models.current()


def test_one_operation_asks_for_the_version_once_whatever_its_transactions(core: Core) -> None:
    with version_reads() as reads, core.models.one_version():
        granted(core)
        core.models.model()
    assert sum(reads) == 1


def elsewhere(other: Core) -> LoadedModel:
    """A new version loaded by another node: its own process, so none of this one's scopes."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(other.models.load, with_newcomer(), "elsewhere.yaml", SYSTEM).result()


def test_an_operation_decides_under_the_version_it_began_with(core: Core, other: Core) -> None:
    """Another node loads a version mid-operation: the operation finishes under the one it
    began with, and the next operation is under the new one."""
    with core.models.one_version():
        began = core.models.current()
        loaded = elsewhere(other)
        with core.db.read() as s:
            assert core.models.current(s) == began
        assert core.models.model().user("newcomer01") is None
    assert core.models.current()[0] == loaded.id


def test_a_version_loaded_inside_an_operation_is_in_force_for_the_rest_of_it(core: Core) -> None:
    with core.models.one_version():
        before = core.models.current()
        loaded = core.models.load(with_newcomer(), "new.yaml", SYSTEM)
        model_id, model = core.models.current()
    assert (model_id, model.user("newcomer01") is not None) == (loaded.id, True)
    assert model_id != before[0]


def test_a_thread_started_inside_an_operation_asks_for_itself(core: Core, other: Core) -> None:
    """The scope is the operation's own: a worker it starts (a thread, or an asyncio task
    that outlives it) reads the version in force, not the operation's."""
    seen: list[int] = []
    with core.models.one_version():
        core.models.current()
        loaded = elsewhere(other)
        worker = threading.Thread(target=lambda: seen.append(core.models.current()[0]))
        worker.start()
        worker.join()
    assert seen == [loaded.id]


def test_an_operation_that_outlived_its_scope_reads_the_version_in_force(
    core: Core, other: Core
) -> None:
    with core.models.one_version():
        core.models.current()
        leftover = contextvars.copy_context()  # what a task created now would carry
    loaded = other.models.load(with_newcomer(), "elsewhere.yaml", SYSTEM)
    assert leftover.run(core.models.current)[0] == loaded.id
