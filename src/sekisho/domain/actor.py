"""Who is acting, and from where."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    name: str
    source: str  # a client address, "cli", "scheduler"

    @classmethod
    def system(cls, component: str) -> Actor:
        """sekisho itself: the scheduler, a server-side command. Never a person."""
        return cls(f"sekisho:{component}", component)

    @property
    def is_system(self) -> bool:
        return self.name.startswith("sekisho:")
