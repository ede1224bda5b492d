"""An in-memory provider: the twin used by tests, with failures on demand."""

from __future__ import annotations

import threading
from collections import defaultdict

from sqlalchemy.orm import Session

from sekisho.domain.errors import ProviderFailure


class MemoryProvider:
    name = "memory"

    def __init__(self) -> None:
        self._members: dict[str, set[str]] = defaultdict(set)
        self._tags: dict[str, dict[str, str]] = defaultdict(dict)
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str, str]] = []

    def fail(self, operation: str, times: int = 1) -> None:
        """Make the next `times` calls of `operation` (e.g. "set_tag") raise ProviderFailure."""
        self._failures[operation] = times

    def _enter(self, operation: str, user: str, arg: str) -> None:
        self.calls.append((operation, user, arg))
        self._maybe_fail(operation)

    def _maybe_fail(self, operation: str) -> None:
        left = self._failures.get(operation, 0)
        if left:
            self._failures[operation] = left - 1
            raise ProviderFailure(f"{operation} failed: backend unavailable (injected)")

    def add_member(self, user: str, group: str) -> str:
        with self._lock:
            self._enter("add_member", user, group)
            self._members[group].add(user)
        return f"added {user} to {group}"

    def remove_member(self, user: str, group: str) -> str:
        with self._lock:
            self._enter("remove_member", user, group)
            self._members[group].discard(user)
        return f"removed {user} from {group}"

    def set_tag(self, user: str, key: str, value: str) -> str:
        with self._lock:
            self._enter("set_tag", user, key)
            self._tags[user][key] = value
        return f"tagged {user} {{{key}: {value}}}"

    def delete_tag(self, user: str, key: str) -> str:
        with self._lock:
            self._enter("delete_tag", user, key)
            self._tags[user].pop(key, None)
        return f"untagged {user} {key}"

    def members(self, group: str) -> frozenset[str]:
        with self._lock:
            self._maybe_fail("members")  # reads are not recorded in `calls`
            return frozenset(self._members[group])

    def tags(self, user: str) -> dict[str, str]:
        with self._lock:
            self._maybe_fail("tags")
            return dict(self._tags[user])

    def within(self, session: Session) -> None:
        return None  # a system of its own, as real providers are
