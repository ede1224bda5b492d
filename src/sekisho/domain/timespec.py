"""Reading the times people type: ISO 8601, the seed's `YYYYMMDDhhmm`, and `2h30m`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sekisho.domain.errors import InvalidInput

_SEED_TTL = re.compile(r"\d{12}")  # YYYYMMDDhhmm, as the seed's TTL tag
_SEED_FORMAT = "%Y%m%d%H%M"
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_MAX_DURATION = timedelta(days=366)
# The instants a person may name. Far from datetime's own limits, so moving an instant to UTC
# or adding any duration `parse_duration` accepts cannot overflow.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput.one("timezone", "iana_zone", f"unknown time zone {name!r}") from exc


def parse_instant(text: str, field: str, tz: ZoneInfo) -> datetime:
    """An absolute time. Times without an offset are read in `tz` (the model's zone)."""
    value = text.strip()
    if _SEED_TTL.fullmatch(value):
        try:
            naive = datetime.strptime(value, _SEED_FORMAT)  # noqa: DTZ007 - zone applied below
        except ValueError as exc:
            raise InvalidInput.one(
                field, "time_format", f"{text!r} is not a valid YYYYMMDDhhmm time"
            ) from exc
        return _in_range(naive.replace(tzinfo=tz), text, field)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput.one(
            field,
            "time_format",
            f"{text!r} is not a time: use ISO 8601 (2026-11-29T18:00+09:00) or YYYYMMDDhhmm",
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return _in_range(parsed, text, field)


def _in_range(parsed: datetime, text: str, field: str) -> datetime:
    """`parsed` in UTC, or a refusal naming the field (never an OverflowError)."""
    try:
        at: datetime | None = parsed.astimezone(UTC)
    except OverflowError:
        at = None  # year 1 or 9999 pushed past datetime's range by the offset
    if at is None or not _EARLIEST <= at < _LATEST:
        raise InvalidInput.one(
            field, "time_range", f"{text[:40]!r} is not a time between the years 1970 and 9998"
        )
    return at


def parse_duration(text: str, field: str) -> timedelta:
    """`2h30m`, `90m`, `1d`, `45s`: positive, at most a year."""
    value = text.strip().lower()
    match = _DURATION.fullmatch(value)
    if not value or match is None or not any(match.groups()):
        raise InvalidInput.one(
            field, "duration_format", f"{text!r} is not a duration: use forms like 2h30m, 90m, 1d"
        )
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    try:
        result = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError as exc:
        raise InvalidInput.one(field, "duration_range", f"{text!r} is too long") from exc
    if result <= timedelta(0):
        raise InvalidInput.one(field, "duration_positive", "the duration must be positive")
    if result > _MAX_DURATION:
        raise InvalidInput.one(field, "duration_range", f"{text!r} is longer than a year")
    return result


def format_duration(delta: timedelta) -> str:
    """The inverse of `parse_duration`, for messages: 2h30m, 45s, 1d2h."""
    total = int(delta.total_seconds())
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def iso(at: datetime) -> str:
    """UTC ISO 8601 with a Z, to the second: the form sekisho writes everywhere."""
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def seed_tag(end: datetime, tz: ZoneInfo) -> str:
    """The seed's TTL tag for a membership ending at `end`: YYYYMMDDhhmm on the wall clock of
    `tz`, never before `end` as it is read back (`parse_ttl_tag`): rounded up to the minute
    (an end at 09:16:30 is tagged 09:17), and past the hour a clock change repeats (a time in
    it reads as its first occurrence)."""
    local = end.astimezone(tz)
    minute = local.replace(second=0, microsecond=0)
    if minute < local:
        minute += timedelta(minutes=1)  # wall-clock arithmetic: tzinfo kept, fold reset
    text = minute.strftime(_SEED_FORMAT)
    while _read_seed(text, tz) < end:  # the fold=0 reading rises with the wall clock
        minute += timedelta(minutes=1)
        text = minute.strftime(_SEED_FORMAT)
    return text


def _read_seed(text: str, tz: ZoneInfo) -> datetime:
    naive = datetime.strptime(text, _SEED_FORMAT)  # noqa: DTZ007 - the zone is applied here
    return naive.replace(tzinfo=tz).astimezone(UTC)


def parse_ttl_tag(value: str, tz: ZoneInfo) -> datetime | None:
    """A grant's end as a provider tag holds it: sekisho's ISO 8601 or the seed's
    YYYYMMDDhhmm (read in the model's zone). None when the tag is neither."""
    try:
        return parse_instant(value, "tag", tz)
    except InvalidInput:
        return None


def backoff(attempts: int, first: timedelta, most: timedelta) -> timedelta:
    """The wait before retry number `attempts` (1, 2, ...): `first`, doubling, at most `most`."""
    return min(first * (1 << min(max(attempts, 1) - 1, 20)), most)
