"""The databases measured: a SQLite file on disk (the default) and, if given, PostgreSQL.

Each measurement gets a database of its own, created here and removed afterwards. On
PostgreSQL that is a `sekisho_bench_*` database created on the server and dropped WITH (FORCE).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sekisho.bootstrap import Core, build_core, ensure_schema, freeze_startup_heap
from sekisho.config import Settings
from sekisho.domain.actor import Actor

BENCH = Actor.system("bench")
MODEL_PATH = Path(__file__).resolve().parent / "model.yaml"


@dataclass(frozen=True)
class Backend:
    name: str  # "SQLite" or "PostgreSQL"
    admin_url: str | None = None  # PostgreSQL: where to create and drop databases

    @property
    def is_postgres(self) -> bool:
        return self.admin_url is not None

    @contextmanager
    def database(self, data_dir: Path, label: str) -> Iterator[str]:
        """A fresh, empty database; its URL. Removed on exit."""
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.admin_url is None:
            path = data_dir / f"{label}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            try:
                yield f"sqlite:///{path}"
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        name = f"sekisho_bench_{label}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            url = make_url(self.admin_url).set(database=name)
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def postgres_version(admin_url: str) -> str:
    engine = create_engine(admin_url)
    try:
        with engine.connect() as connection:
            server = connection.scalar(text("SHOW server_version"))
            settings = {
                name: connection.scalar(text(f"SHOW {name}"))
                for name in ("fsync", "synchronous_commit", "shared_buffers")
            }
    finally:
        engine.dispose()
    shown = ", ".join(f"{k}={v}" for k, v in settings.items())
    return f"{server} on {make_url(admin_url).host}, {shown}"


def settings_for(url: str, data_dir: Path, login_failure_delay: float = 0) -> Settings:
    return Settings(data_dir=data_dir, database_url=url, login_failure_delay=login_failure_delay)


def open_core(url: str, data_dir: Path) -> Core:
    """A core as `sekisho serve` builds it (local provider, system clock), schema migrated,
    and the process's heap as it then leaves it (`freeze_startup_heap`)."""
    core = build_core(settings_for(url, data_dir))
    ensure_schema(core)
    freeze_startup_heap()
    return core


def load_bench_model(core: Core, replace: dict[str, str] | None = None) -> None:
    """The benchmark's model, with `replace` (old text: new text) applied (a target's port)."""
    text = MODEL_PATH.read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    core.models.load(text, str(MODEL_PATH), BENCH)


@dataclass(frozen=True)
class Credentials:
    password: str
    totp_secret: str


def enroll(core: Core, names: list[str]) -> dict[str, Credentials]:
    """Enrol everyone (Argon2 hashing dominates, so two at a time: two cores)."""

    def one(name: str) -> tuple[str, Credentials]:
        e = core.identity.enroll(BENCH, name)
        return name, Credentials(e.password, e.totp_secret)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, names))
