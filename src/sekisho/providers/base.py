"""Where a grant becomes real. One small interface; every operation idempotent.

A provider mirrors the seed's IAM calls: group membership plus a `{group: end}` tag on the user.
Each call returns a short human-readable outcome for the request's timeline, and raises
`ProviderFailure` when the backend did not confirm. Never report done before the backend did.

A provider whose directory lives in sekisho's own database (`local`) can also work inside the
caller's transaction (`within`): its changes then commit, or roll back, with sekisho's record
of them, and cost no transaction of their own. Every other provider answers None there.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session


class Provider(Protocol):
    @property
    def name(self) -> str: ...

    def add_member(self, user: str, group: str) -> str: ...

    def remove_member(self, user: str, group: str) -> str: ...

    def set_tag(self, user: str, key: str, value: str) -> str: ...

    def delete_tag(self, user: str, key: str) -> str: ...

    def members(self, group: str) -> frozenset[str]: ...

    def tags(self, user: str) -> dict[str, str]: ...

    def within(self, session: Session) -> Provider | None:
        """This provider writing in `session`'s transaction; None if it lives elsewhere."""
        ...
