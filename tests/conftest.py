"""Shared fixtures. Store-touching tests run on SQLite and on PostgreSQL.

PostgreSQL is the server at SEKISHO_TEST_POSTGRES_URL. Without it, PostgreSQL cases skip with
that reason, except under CI=true, where they must run.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.domain.actor import Actor
from sekisho.providers.memory import MemoryProvider
from sekisho.store import migrate
from sekisho.store.db import Database
from sekisho.store.tables import Base
from support import assemble_core

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_MODEL = ROOT / "examples" / "jump-account.yaml"
POSTGRES_ENV = "SEKISHO_TEST_POSTGRES_URL"
ADMIN = Actor("admin01", "test")


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return f"PostgreSQL cases: on, at {make_url(url).render_as_string(hide_password=True)}"
    return f"PostgreSQL cases: SKIPPED (set {POSTGRES_ENV} to run them)"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not os.environ.get(POSTGRES_ENV):
        terminalreporter.write_line(
            f"PostgreSQL cases were skipped: set {POSTGRES_ENV} to run them", yellow=True
        )


def postgres_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: PostgreSQL tests must run in CI")
    return None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    url = postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL not configured: set {POSTGRES_ENV} to run these cases")
    name = f"sekisho_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    test_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    db = Database(test_url)
    migrate.upgrade(db)
    db.dispose()
    yield test_url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    db = Database(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    # A previous test's gateway thread may still be recording a session's end when this
    # test starts (its stop waits a bounded time on a loaded machine); PostgreSQL then
    # picks one of the two as a deadlock victim. The straggler's transaction commits, and
    # the truncate, retried, empties the tables after it.
    for attempt in range(5):
        try:
            with db.engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                connection.execute(
                    text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"),
                    {"h": "0" * 64},
                )
            break
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.2)
    db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "sekisho.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    _reset_postgres(url)
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def provider() -> MemoryProvider:
    return MemoryProvider()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        login_failure_delay=0,
        end_retry_first=timedelta(seconds=2),
    )


@pytest.fixture
def sleeps() -> list[float]:
    """The core's sleeps (a refused sign-in's delay, ...), recorded instead of slept."""
    return []


@pytest.fixture
def core(
    db_url: str,
    clock: ManualClock,
    provider: MemoryProvider,
    settings: Settings,
    sleeps: list[float],
) -> Iterator[Core]:
    db = Database(db_url)
    built = assemble_core(db, settings, provider, clock, sleep=sleeps.append)
    yield built
    db.dispose()
