"""The audit trail as CSV or JSON Lines, streamed in batches with the page's filters."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from sekisho.domain.timespec import iso
from sekisho.services.audit import AuditFilter
from sekisho.services.views import AuditEntryView

BATCH = 1000
COLUMNS = (
    "seq",
    "at",
    "action",
    "outcome",
    "actor",
    "subject",
    "request_id",
    "grant_id",
    "object",
    "source",
    "detail",
    "node",
    "hash",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Fetch = Callable[[AuditFilter], list[AuditEntryView]]


def entry(view: AuditEntryView) -> dict[str, Any]:
    """One entry's exported fields: the hash-covered content and the hash."""
    fields = view.model_dump(include=set(COLUMNS))
    return {name: fields[name] for name in COLUMNS} | {"at": iso(view.at)}


def rows(fetch: Fetch, first: list[AuditEntryView], f: AuditFilter) -> Iterator[AuditEntryView]:
    """Every matching entry, newest first, fetching one batch at a time."""
    batch = first
    while batch:
        yield from batch
        if len(batch) < f.limit:
            return
        batch = fetch(replace(f, before_seq=batch[-1].seq))


def jsonl(entries: Iterator[AuditEntryView]) -> Iterator[str]:
    for row in entries:
        yield json.dumps(entry(row), ensure_ascii=False, sort_keys=True) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    # A spreadsheet would run a cell that starts like a formula; quote it as text.
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_lines(entries: Iterator[AuditEntryView]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in entries:
        fields = entry(row)
        writer.writerow([_cell(fields[name]) for name in COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
