"""The `local` provider: sekisho's own directory, in its own database.

Memberships and TTL tags as the seed keeps them in IAM, shown by `sekisho user show`. Useful on
its own (the gateway and `sekisho can` consult grants) and as the model for real providers.
Living in sekisho's database, it can write inside the caller's transaction (`within`): a
grant's activation or ending and the membership change then commit together.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.store import bulk
from sekisho.store.db import Database
from sekisho.store.tables import LocalMembershipRow, LocalTagRow

_M, _T = LocalMembershipRow, LocalTagRow

PRELOAD_CHUNK = 500  # users per statement: far below SQLite's and PostgreSQL's limits


class LocalDirectory:
    """The directory's changes and reads, in one transaction the caller owns.

    A batch preloads its users' memberships and tags (`preload`): its steps then read no row
    one by one, and its removals are deleted together before the next statement or the
    commit (a removal cannot conflict; an addition is written at its own step, so a conflict
    fails that step)."""

    name = "local"

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session, self._clock = session, clock
        self._loaded: set[str] = set()  # users whose rows are all in the two below
        self._members: set[tuple[str, str]] = set()
        self._tags: dict[tuple[str, str], str] = {}

    def preload(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Read every membership and tag of these pairs' users, a chunk of users at a time."""
        users = sorted({user for user, _group in pairs} - self._loaded)
        s = self._session
        for start in range(0, len(users), PRELOAD_CHUNK):
            chunk = users[start : start + PRELOAD_CHUNK]
            members = s.execute(select(_M.user, _M.group_name).where(_M.user.in_(chunk)))
            self._members.update((user, group) for user, group in members)
            tags = s.execute(select(_T.user, _T.key, _T.value).where(_T.user.in_(chunk)))
            self._tags.update(((user, key), value) for user, key, value in tags)
            self._loaded.update(chunk)

    def _is_member(self, user: str, group: str) -> bool:
        if user in self._loaded:
            return (user, group) in self._members
        found = self._session.scalar(select(_M.user).where(_M.user == user, _M.group_name == group))
        return found is not None

    def _tag(self, user: str, key: str) -> str | None:
        if user in self._loaded:
            return self._tags.get((user, key))
        value: str | None = self._session.scalar(
            select(_T.value).where(_T.user == user, _T.key == key)
        )
        return value

    def add_member(self, user: str, group: str) -> str:
        if self._is_member(user, group):
            return f"{user} already in {group}"
        # Written now: a conflicting row fails this step, not the caller's commit.
        self._session.execute(
            insert(_M).values(user=user, group_name=group, added_at=self._clock.now())
        )
        self._members.add((user, group))
        return f"added {user} to {group}"

    def remove_member(self, user: str, group: str) -> str:
        if not self._is_member(user, group):
            return f"{user} was not in {group}"
        bulk.remove(self._session, _M, {"user": user, "group_name": group})
        self._members.discard((user, group))
        return f"removed {user} from {group}"

    def set_tag(self, user: str, key: str, value: str) -> str:
        if self._tag(user, key) is None:
            self._session.execute(insert(_T).values(user=user, key=key, value=value))
        else:
            self._session.execute(
                update(_T).where(_T.user == user, _T.key == key).values(value=value)
            )
        self._tags[(user, key)] = value
        return f"tagged {user} {{{key}: {value}}}"

    def delete_tag(self, user: str, key: str) -> str:
        if self._tag(user, key) is None:
            return f"{user} had no tag {key}"
        bulk.remove(self._session, _T, {"user": user, "key": key})
        self._tags.pop((user, key), None)
        return f"untagged {user} {key}"

    def members(self, group: str) -> frozenset[str]:
        rows = self._session.scalars(select(_M.user).where(_M.group_name == group))
        return frozenset(rows)

    def tags(self, user: str) -> dict[str, str]:
        rows = self._session.execute(select(_T.key, _T.value).where(_T.user == user))
        return dict(rows.all())

    def within(self, session: Session) -> LocalDirectory:
        return self if session is self._session else LocalDirectory(session, self._clock)


class LocalProvider:
    """The directory on its own: each call is a transaction of its own."""

    name = "local"

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def add_member(self, user: str, group: str) -> str:
        with self._db.write() as s:
            return self.within(s).add_member(user, group)

    def remove_member(self, user: str, group: str) -> str:
        with self._db.write() as s:
            return self.within(s).remove_member(user, group)

    def set_tag(self, user: str, key: str, value: str) -> str:
        with self._db.write() as s:
            return self.within(s).set_tag(user, key, value)

    def delete_tag(self, user: str, key: str) -> str:
        with self._db.write() as s:
            return self.within(s).delete_tag(user, key)

    def members(self, group: str) -> frozenset[str]:
        with self._db.read() as s:
            return self.within(s).members(group)

    def tags(self, user: str) -> dict[str, str]:
        with self._db.read() as s:
            return self.within(s).tags(user)

    def within(self, session: Session) -> LocalDirectory:
        return LocalDirectory(session, self._clock)
