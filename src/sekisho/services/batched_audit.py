"""Audit entries written in group commits: many refusals, one transaction, each still durable.

A flood of refused sign-ins is a flood of audit entries. Written one transaction each, they
queue on the database's commits (and on SQLite's one writer), and a real sign-in queues
behind them. Here callers hand their domain event (a refusal, whose effect handler writes
its entry) to one writer thread and wait for its future: the writer takes everything
waiting, records it in one unit of work, and resolves every future once that commits. A
caller still learns of its entry's commit (or its failure) before it answers; the entries
only share the commit. The writer stops when idle and starts again on the next entry, so an
idle service holds no thread.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from sekisho.domain.events import DomainEvent
from sekisho.store.unit_of_work import Store

MAX_BATCH = 500
IDLE_S = 1.0

_Entry = tuple[DomainEvent, "Future[None]"]


class BatchedAudit:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._waiting: queue.SimpleQueue[_Entry] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None

    def record(self, event: DomainEvent) -> Future[None]:
        """Queue `event`; the future resolves once its transaction has committed."""
        done: Future[None] = Future()
        self._waiting.put((event, done))
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write, name="sekisho-audit-batch", daemon=True
                )
                self._writer.start()
        return done

    def _write(self) -> None:
        while True:
            try:
                batch = [self._waiting.get(timeout=IDLE_S)]
            except queue.Empty:
                with self._lock:  # an entry queued before this check is still seen
                    if self._waiting.empty():
                        self._writer = None
                        return
                continue
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[_Entry]) -> None:
        try:
            with self._store.write() as uow:
                uow.record(*(event for event, _ in batch))
        except Exception as exc:  # every waiter learns its entry was not written
            for _, done in batch:
                done.set_exception(exc)
        else:
            for _, done in batch:
                done.set_result(None)
