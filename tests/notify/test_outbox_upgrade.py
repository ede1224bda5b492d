"""Upgrading in the middle of a backlog: messages already in the outbox keep their order."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sekisho.store import migrate
from sekisho.store.db import Database

BEFORE = "0003"  # the outbox as it was, without order keys
ROWS = [  # event, request: what a backlog may hold
    ("grant.activated", 7),
    ("grant.ended", 7),
    ("request.decided", 8),
    ("expiry.report", 7),  # a report names its first request, but is about many
    ("notify.test", None),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (the shared test databases are migrated already)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"
        return
    url = os.environ.get("SEKISHO_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but SEKISHO_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not configured: set SEKISHO_TEST_POSTGRES_URL")
    name = f"sekisho_upgrade_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_upgrade_gives_waiting_messages_their_order_key(fresh_url: str) -> None:
    db = Database(fresh_url)
    try:
        migrate.upgrade(db, BEFORE)
        with db.engine.begin() as connection:
            for number, (event, request_id) in enumerate(ROWS):
                connection.execute(
                    text(
                        "INSERT INTO notifications (key, event, channel, request_id, message, "
                        "status, attempts, created_at, next_at) VALUES (:key, :event, 'hook', "
                        ":request, '{}', 'pending', 0, :at, :at)"
                    ),
                    {
                        "key": f"k{number}",
                        "event": event,
                        "request": request_id,
                        "at": "2026-11-29 09:00:00",
                    },
                )
        migrate.upgrade(db)
        with db.engine.connect() as connection:
            keys = dict(connection.execute(text("SELECT key, order_key FROM notifications")).all())
        assert keys == {
            "k0": "request:7",
            "k1": "request:7",
            "k2": "request:8",
            "k3": None,
            "k4": None,
        }
    finally:
        db.dispose()
