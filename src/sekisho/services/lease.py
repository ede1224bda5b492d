"""Leases: one node at a time runs the scheduler when several share a database.

A lease is a row with a holder and an expiry, taken and renewed under a row lock. A node that
dies simply stops renewing, and another takes over when the lease runs out.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from sekisho.clock import Clock
from sekisho.store.db import Database
from sekisho.store.tables import LeaseRow

SCHEDULER = "scheduler"


def node_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leases:
    def __init__(self, db: Database, clock: Clock, holder: str | None = None) -> None:
        self._db, self._clock = db, clock
        self.holder = holder or node_id()

    def acquire(self, name: str, ttl: timedelta) -> bool:
        """Take or renew the lease; False while another live holder has it."""
        now = self._clock.now()
        try:
            with self._db.write() as s:
                row = s.execute(
                    select(LeaseRow).where(LeaseRow.name == name).with_for_update()
                ).scalar_one_or_none()
                if row is None:
                    s.add(LeaseRow(name=name, holder=self.holder, expires_at=now + ttl))
                elif row.holder != self.holder and row.expires_at > now:
                    return False
                else:
                    row.holder, row.expires_at = self.holder, now + ttl
        except IntegrityError:  # another node created the lease row at the same moment
            return False
        return True

    def release(self, name: str) -> None:
        with self._db.write() as s:
            row = s.get(LeaseRow, name, with_for_update=True)
            if row is not None and row.holder == self.holder:
                s.delete(row)
