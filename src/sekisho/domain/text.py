"""Rules for text people type: bounded length, no control characters, sane names."""

from __future__ import annotations

import functools
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


# Characters that are not text on a screen: C0 and C1 controls (ESC sequences repaint a
# terminal, 0x9b is an 8-bit CSI), format characters (bidi overrides reorder what follows),
# lone surrogates (not encodable at all) and the Unicode line and paragraph separators.
CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
PROSE_ALLOWED = frozenset({"\n", "\t"})  # what a paragraph of prose may contain


def is_control(ch: str) -> bool:
    return unicodedata.category(ch) in CONTROL_CATEGORIES


def has_control(value: str, *, multiline: bool = False) -> bool:
    """True if `value` holds a control character (line breaks and tabs allowed in prose)."""
    if value.isascii() and value.isprintable():
        return False  # the common case, decided in C
    allowed = PROSE_ALLOWED if multiline else frozenset()
    return any(ch not in allowed and is_control(ch) for ch in value)


@functools.cache
def control_ranges() -> tuple[tuple[int, int], ...]:
    """The code points `is_control` refuses, as inclusive ranges (lone surrogates left out:
    no decoded text can hold one), for describing the rule to others (a JSON Schema
    pattern). Computed once, from the same Unicode tables."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF or not is_control(chr(code)):
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return tuple(ranges)


def no_control_pattern(*, multiline: bool = False) -> str:
    """A regular expression (for a JSON Schema `pattern`; Python reads it the same) for text
    without control characters; prose may also hold line breaks (LF or CRLF) and tabs."""

    def spelt(code: int) -> str:  # \uXXXX means the same in every dialect; beyond, the char
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    excluded = "".join(
        spelt(a) if a == b else f"{spelt(a)}-{spelt(b)}" for a, b in control_ranges()
    )
    if not multiline:
        return f"^[^{excluded}]*$"
    allowed = "\\t\\n"
    return f"^(?:[^{excluded}]|[{allowed}]|\\r\\n)*$"


def normalize_newlines(value: str) -> str:
    """A form's CRLF is a line break; a lone CR (which rewrites a terminal line) stays, to be
    refused."""
    return value.replace("\r\n", "\n")


def visible(value: str, *, keep: frozenset[str] = frozenset()) -> str:
    """`value` with every control character spelt out (ESC as \\x1b, U+202E as \\u202e), for
    showing text someone else wrote on a terminal: it can no longer move the cursor, hide
    text, make links or reorder the line. Characters in `keep` stay as they are."""
    if value.isascii() and value.isprintable():
        return value
    return "".join(_spelt(ch) if ch not in keep and is_control(ch) else ch for ch in value)


def _spelt(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def check_text(field: str, value: str, *, max_length: int, multiline: bool = False) -> str:
    """Return `value` stripped, or raise naming the field and the rule it breaks.

    Prose (`multiline`) may hold line breaks and tabs; a CRLF counts as one line break."""
    if multiline:
        value = normalize_newlines(value)
    if len(value) > max_length:
        raise InvalidInput.one(
            field, "max_length", f"is {len(value)} characters long; at most {max_length} allowed"
        )
    if has_control(value, multiline=multiline):
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
