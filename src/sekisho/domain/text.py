"""Rules for text people type: bounded length, no control characters, sane names."""

from __future__ import annotations

import re
import unicodedata

from sekisho.domain.errors import InvalidInput

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
ROLE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[A-Za-z0-9][A-Za-z0-9._+=,@-]{0,63}")

# Deliberately loose (local part, @, a host name) but with no room for spaces, line breaks or
# a second address: what a mail header and an SMTP RCPT can carry safely.
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
EMAIL_MAX = 254

SHORT_TEXT = 200
LONG_TEXT = 4000


def _has_control(value: str, multiline: bool) -> bool:
    allowed = {"\n", "\t", "\r"} if multiline else set()
    for ch in value:
        if ch in allowed:
            continue
        # Cc: C0/C1 controls (ESC sequences could repaint a terminal); Cf: bidi overrides etc.
        if unicodedata.category(ch) in ("Cc", "Cf"):
            return True
    return False


def check_text(field: str, value: str, *, max_length: int, multiline: bool = False) -> str:
    """Return `value` stripped, or raise naming the field and the rule it breaks."""
    if len(value) > max_length:
        raise InvalidInput.one(
            field, "max_length", f"is {len(value)} characters long; at most {max_length} allowed"
        )
    if _has_control(value, multiline):
        raise InvalidInput.one(field, "no_control_characters", "contains control characters")
    return value.strip()


def check_name(field: str, value: str) -> str:
    if not NAME.fullmatch(value):
        raise InvalidInput.one(
            field,
            "name_format",
            f"{value[:40]!r} is not a name: letters, digits and ._@+- only, up to 128",
        )
    return value


def is_email(value: str) -> bool:
    return len(value) <= EMAIL_MAX and _EMAIL.fullmatch(value) is not None


def check_email(field: str, value: str) -> str:
    if not is_email(value):
        raise InvalidInput.one(field, "email_format", f"{value[:60]!r} is not an e-mail address")
    return value
