"""Who is acting, and from where."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    name: str
    source: str  # a client address, "cli", "scheduler"
    # The login token's id when a person acts through one: what step-up proofs belong to.
    token_id: str | None = field(default=None, compare=False)

    @classmethod
    def system(cls, component: str) -> Actor:
        """sekisho itself: the scheduler, a server-side command. Never a person."""
        return cls(f"sekisho:{component}", component)

    @property
    def is_system(self) -> bool:
        return self.name.startswith("sekisho:")
