"""The `local` provider: sekisho's own directory, in its own database.

Memberships and TTL tags as the seed keeps them in IAM, shown by `sekisho user show`. Useful on
its own (the gateway and `sekisho can` consult grants) and as the model for real providers.
"""

from __future__ import annotations

from sqlalchemy import select

from sekisho.clock import Clock
from sekisho.store.db import Database
from sekisho.store.tables import LocalMembershipRow, LocalTagRow


class LocalProvider:
    name = "local"

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def add_member(self, user: str, group: str) -> str:
        with self._db.write() as s:
            if s.get(LocalMembershipRow, (user, group)) is not None:
                return f"{user} already in {group}"
            s.add(LocalMembershipRow(user=user, group_name=group, added_at=self._clock.now()))
        return f"added {user} to {group}"

    def remove_member(self, user: str, group: str) -> str:
        with self._db.write() as s:
            row = s.get(LocalMembershipRow, (user, group))
            if row is None:
                return f"{user} was not in {group}"
            s.delete(row)
        return f"removed {user} from {group}"

    def set_tag(self, user: str, key: str, value: str) -> str:
        with self._db.write() as s:
            row = s.get(LocalTagRow, (user, key))
            if row is None:
                s.add(LocalTagRow(user=user, key=key, value=value))
            else:
                row.value = value
        return f"tagged {user} {{{key}: {value}}}"

    def delete_tag(self, user: str, key: str) -> str:
        with self._db.write() as s:
            row = s.get(LocalTagRow, (user, key))
            if row is None:
                return f"{user} had no tag {key}"
            s.delete(row)
        return f"untagged {user} {key}"

    def members(self, group: str) -> frozenset[str]:
        with self._db.read() as s:
            rows = s.scalars(
                select(LocalMembershipRow.user).where(LocalMembershipRow.group_name == group)
            )
            return frozenset(rows)

    def tags(self, user: str) -> dict[str, str]:
        with self._db.read() as s:
            rows = s.execute(
                select(LocalTagRow.key, LocalTagRow.value).where(LocalTagRow.user == user)
            )
            return dict(rows.tuples().all())
