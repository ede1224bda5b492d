"""The `local` provider: sekisho's own directory, in its own database.

Memberships and TTL tags as the seed keeps them in IAM, shown by `sekisho user show`. Useful on
its own (the gateway and `sekisho can` consult grants) and as the model for real providers.
Living in sekisho's database, it can write inside the caller's transaction (`within`): a
grant's activation or ending and the membership change then commit together.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.store.db import Database
from sekisho.store.tables import LocalMembershipRow, LocalTagRow

PRELOAD_CHUNK = 500  # users per statement: far below SQLite's and PostgreSQL's limits


class LocalDirectory:
    """The directory's changes and reads, in one transaction the caller owns.

    A batch preloads its users' rows (`preload`): its steps then read no row one by one, and
    its removals are written together at the commit (a removal cannot conflict; an addition
    is flushed at its own step, so a conflict fails that step)."""

    name = "local"

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session, self._clock = session, clock
        self._loaded: set[str] = set()  # users whose rows are all in the two maps below
        self._members: dict[tuple[str, str], LocalMembershipRow] = {}
        self._tags: dict[tuple[str, str], LocalTagRow] = {}

    def preload(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Read every membership and tag of these pairs' users, a chunk of users at a time."""
        users = sorted({user for user, _group in pairs} - self._loaded)
        s = self._session
        for start in range(0, len(users), PRELOAD_CHUNK):
            chunk = users[start : start + PRELOAD_CHUNK]
            members = s.scalars(
                select(LocalMembershipRow).where(LocalMembershipRow.user.in_(chunk))
            )
            self._members.update(((r.user, r.group_name), r) for r in members)
            tags = s.scalars(select(LocalTagRow).where(LocalTagRow.user.in_(chunk)))
            self._tags.update(((r.user, r.key), r) for r in tags)
            self._loaded.update(chunk)

    def _membership(self, user: str, group: str) -> LocalMembershipRow | None:
        if user in self._loaded:
            return self._members.get((user, group))
        return self._session.get(LocalMembershipRow, (user, group))

    def _tag(self, user: str, key: str) -> LocalTagRow | None:
        if user in self._loaded:
            return self._tags.get((user, key))
        return self._session.get(LocalTagRow, (user, key))

    def add_member(self, user: str, group: str) -> str:
        s = self._session
        if self._membership(user, group) is not None:
            return f"{user} already in {group}"
        row = LocalMembershipRow(user=user, group_name=group, added_at=self._clock.now())
        s.add(row)
        s.flush()  # a conflicting row fails here, on this step, not at the caller's commit
        self._members[(user, group)] = row
        return f"added {user} to {group}"

    def remove_member(self, user: str, group: str) -> str:
        row = self._membership(user, group)
        if row is None:
            return f"{user} was not in {group}"
        self._session.delete(row)
        self._members.pop((user, group), None)
        return f"removed {user} from {group}"

    def set_tag(self, user: str, key: str, value: str) -> str:
        row = self._tag(user, key)
        if row is None:
            row = LocalTagRow(user=user, key=key, value=value)
            self._session.add(row)
        else:
            row.value = value
        self._session.flush()
        self._tags[(user, key)] = row
        return f"tagged {user} {{{key}: {value}}}"

    def delete_tag(self, user: str, key: str) -> str:
        row = self._tag(user, key)
        if row is None:
            return f"{user} had no tag {key}"
        self._session.delete(row)
        self._tags.pop((user, key), None)
        return f"untagged {user} {key}"

    def members(self, group: str) -> frozenset[str]:
        rows = self._session.scalars(
            select(LocalMembershipRow.user).where(LocalMembershipRow.group_name == group)
        )
        return frozenset(rows)

    def tags(self, user: str) -> dict[str, str]:
        rows = self._session.execute(
            select(LocalTagRow.key, LocalTagRow.value).where(LocalTagRow.user == user)
        )
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
