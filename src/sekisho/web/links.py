"""Canonical links into the web UI, for messages that point people at a page."""

from __future__ import annotations


def request_link(public_url: str, request_id: int) -> str:
    """The deep link to a request's page: `settings.public_url` + `/requests/{id}`."""
    return f"{public_url.rstrip('/')}/requests/{request_id}"


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go to after signing in; anything else (another site) is refused.

    Browsers drop tabs and line breaks from a URL before they read it (WHATWG URL), so
    `/<TAB>/evil.example` is `//evil.example`, another site: any control character or space
    refuses the target, as a second slash or a backslash does."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target):
        return default
    return target
