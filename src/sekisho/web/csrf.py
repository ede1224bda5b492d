"""CSRF protection: every state-changing form carries a token the server can recompute.

The token is an HMAC of the browser's secret: the session token once signed in, or a random
pre-session value (its own cookie) on the sign-in form. Both cookies are HttpOnly and
SameSite=Strict, so a page on another site can neither read them nor make the browser send
them; a forged form has no way to know the token. Any node recomputes it from the cookie
alone, so nodes behind one load balancer need no shared web state.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sekisho.domain.errors import Forbidden

FIELD = "csrf"  # the hidden form field
HEADER = "X-CSRF-Token"  # for htmx requests that send no form
PRESESSION_COOKIE = "sekisho_presession"
_PURPOSE = b"sekisho web csrf v1"


class CsrfRejected(Forbidden):
    code = "csrf-rejected"
    title = "Form expired or forged"


def token_for(secret: str) -> str:
    """The token a form must carry for a browser holding `secret`."""
    # The secret is 256 random bits that only this browser's cookie holds: keying the HMAC
    # with it makes the token unforgeable without it, and the token reveals nothing about it.
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def new_presession_secret() -> str:
    return secrets.token_urlsafe(32)


def check(secret: str | None, sent: str | None) -> None:
    """Refuse (403) unless `sent` is the token for `secret`."""
    if not secret or not sent or not hmac.compare_digest(token_for(secret), sent):
        raise CsrfRejected(
            "this form is missing its security token or it has expired: "
            "reload the page and try again"
        )
