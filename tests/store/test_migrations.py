"""Schema migrations: one head, upgrade from empty, and the tables in code match them."""

from __future__ import annotations

from sqlalchemy import inspect, text

from sekisho.store import migrate
from sekisho.store.db import Database
from sekisho.store.tables import Base


def test_there_is_exactly_one_head() -> None:
    assert len(migrate.heads()) == 1


def test_upgrade_from_empty_reaches_head_and_matches_the_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert migrate.current_revision(db) == migrate.heads()[0]
        assert migrate.pending_model_changes(db) == []
        tables = set(inspect(db.engine).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        with db.engine.connect() as connection:
            head = connection.execute(text("SELECT seq, hash FROM audit_head")).one()
        assert head == (0, "0" * 64)
    finally:
        db.dispose()


def test_upgrading_again_changes_nothing(db_url: str) -> None:
    db = Database(db_url)
    try:
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.heads()[0]
    finally:
        db.dispose()


def test_a_new_sqlite_file_is_private_and_migrates_from_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "fresh" / "sekisho.db"
    db = Database(f"sqlite:///{path}")
    try:
        assert migrate.current_revision(db) is None
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.heads()[0]
        assert migrate.pending_model_changes(db) == []
        assert path.stat().st_mode & 0o077 == 0
    finally:
        db.dispose()
