"""The `local` provider: sekisho's own directory, in its own database.

Memberships and TTL tags as the seed keeps them in IAM, shown by `sekisho user show`. Useful on
its own (the gateway and `sekisho can` consult grants) and as the model for real providers.
Living in sekisho's database, it can write inside the caller's transaction (`within`): a
grant's activation or ending and the membership change then commit together.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.store.db import Database
from sekisho.store.tables import LocalMembershipRow, LocalTagRow


class LocalDirectory:
    """The directory's changes and reads, in one transaction the caller owns."""

    name = "local"

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session, self._clock = session, clock

    def add_member(self, user: str, group: str) -> str:
        s = self._session
        if s.get(LocalMembershipRow, (user, group)) is not None:
            return f"{user} already in {group}"
        s.add(LocalMembershipRow(user=user, group_name=group, added_at=self._clock.now()))
        s.flush()  # a conflicting row fails here, on this step, not at the caller's commit
        return f"added {user} to {group}"

    def remove_member(self, user: str, group: str) -> str:
        row = self._session.get(LocalMembershipRow, (user, group))
        if row is None:
            return f"{user} was not in {group}"
        self._session.delete(row)
        self._session.flush()
        return f"removed {user} from {group}"

    def set_tag(self, user: str, key: str, value: str) -> str:
        row = self._session.get(LocalTagRow, (user, key))
        if row is None:
            self._session.add(LocalTagRow(user=user, key=key, value=value))
        else:
            row.value = value
        self._session.flush()
        return f"tagged {user} {{{key}: {value}}}"

    def delete_tag(self, user: str, key: str) -> str:
        row = self._session.get(LocalTagRow, (user, key))
        if row is None:
            return f"{user} had no tag {key}"
        self._session.delete(row)
        self._session.flush()
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
