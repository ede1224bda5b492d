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
from sekisho.store.tables import AuditRow

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

Fetch = Callable[[AuditFilter], list[AuditRow]]


def entry(row: AuditRow) -> dict[str, Any]:
    """One entry's exported fields: the hash-covered content and the hash."""
    return {
        "seq": row.seq,
        "at": iso(row.at),
        "action": row.action,
        "outcome": row.outcome,
        "actor": row.actor,
        "subject": row.subject,
        "request_id": row.request_id,
        "grant_id": row.grant_id,
        "object": row.object,
        "source": row.source,
        "detail": row.detail,
        "node": row.node,
        "hash": row.hash,
    }


def rows(fetch: Fetch, first: list[AuditRow], f: AuditFilter) -> Iterator[AuditRow]:
    """Every matching entry, newest first, fetching one batch at a time."""
    batch = first
    while batch:
        yield from batch
        if len(batch) < f.limit:
            return
        batch = fetch(replace(f, before_seq=batch[-1].seq))


def jsonl(entries: Iterator[AuditRow]) -> Iterator[str]:
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


def csv_lines(entries: Iterator[AuditRow]) -> Iterator[str]:
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
