"""Where a grant becomes real. One small interface; every operation idempotent.

A provider mirrors the seed's IAM calls: group membership plus a `{group: end}` tag on the user.
Each call returns a short human-readable outcome for the request's timeline, and raises
`ProviderFailure` when the backend did not confirm. Never report done before the backend did.

A provider whose directory lives in sekisho's own database (`local`) can also work inside the
caller's transaction (`within`): its changes then commit, or roll back, with sekisho's record
of them, and cost no transaction of their own. Every other provider answers None there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class Preloading(Protocol):
    """A provider in sekisho's database that reads a batch's rows at once (`local`)."""

    def preload(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Read what the steps for these (user, group) pairs will look at, in few statements."""
        ...
