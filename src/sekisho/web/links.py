"""Canonical links into the web UI, for messages that point people at a page."""

from __future__ import annotations


def request_link(public_url: str, request_id: int) -> str:
    """The deep link to a request's page: `settings.public_url` + `/requests/{id}`."""
    return f"{public_url.rstrip('/')}/requests/{request_id}"


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go to after signing in; anything else (another site) is refused."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ch in target for ch in "\r\n"):
        return default
    return target
