"""Migration 0006: the per-user lock goes, credentials and tokens stay."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from sekisho.store import migrate
from sekisho.store.db import Database

REVISION = "0006"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'old.db'}")
        yield db
        db.dispose()
        return
    request.getfixturevalue("postgres_database")  # skips, or fails under CI, without a server
    url = os.environ["SEKISHO_TEST_POSTGRES_URL"]
    name = f"sekisho_migration_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(make_url(url).set(database=name).render_as_string(hide_password=False))
    yield db
    db.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_credentials_and_tokens_survive_and_the_lock_columns_go(empty_db: Database) -> None:
    before = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(REVISION)
    assert before is not None
    assert isinstance(before.down_revision, str)
    migrate.upgrade(empty_db, before.down_revision)
    with empty_db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (name, password_hash, totp_secret, totp_last_step,"
                " enrolled_at, failed_logins, locked_until) VALUES ('member01', 'hash',"
                " 'sealed', 42, '2026-11-29 09:00:00', 3, '2026-11-29 09:15:00')"
            )
        )
        connection.execute(
            text(
                'INSERT INTO tokens (id, "user", issued_at, expires_at, source) VALUES'
                " ('t1', 'member01', '2026-11-29 09:00:00', '2026-11-29 10:00:00', 'home')"
            )
        )

    migrate.upgrade(empty_db)

    columns = {c["name"] for c in inspect(empty_db.engine).get_columns("users")}
    assert columns == {"name", "password_hash", "totp_secret", "totp_last_step", "enrolled_at"}
    with empty_db.engine.connect() as connection:
        user = connection.execute(
            text("SELECT name, password_hash, totp_secret, totp_last_step FROM users")
        ).one()
        assert tuple(user) == ("member01", "hash", "sealed", 42)
        assert connection.execute(text("SELECT source FROM tokens")).scalar_one() == "home"
        assert connection.execute(text("SELECT count(*) FROM login_throttles")).scalar_one() == 0
    assert migrate.pending_model_changes(empty_db) == []
