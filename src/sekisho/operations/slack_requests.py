"""Slack's signed requests as sekisho takes them: each one once (AdmitSlackRequest), and each
refusal audited (RefuseSlackRequest). What a request asks for is an ordinary use case
(DecideRequest, FileRequest) acted by the person it maps to."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from sekisho.clock import Clock
from sekisho.domain.events import SlackRequestRefused
from sekisho.store.tables import SlackRequestRow
from sekisho.store.unit_of_work import Store

# Slack's signatures are good for five minutes either way: a replay is refused for longer.
KEPT = timedelta(minutes=15)


class AdmitSlackRequest:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self, signature: str) -> bool:
        """True the first time this signed request arrives; False for the same again."""
        now = self._clock.now()
        seen = hashlib.sha256(signature.encode()).hexdigest()
        try:
            with self._store.write() as uow:
                s = uow.session
                s.execute(delete(SlackRequestRow).where(SlackRequestRow.seen_at < now - KEPT))
                s.add(SlackRequestRow(id=seen, seen_at=now))
        except IntegrityError:
            return False
        return True


class RefuseSlackRequest:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self, slack_user: str | None, user: str | None, what: str, why: str) -> None:
        with self._store.write() as uow:
            uow.record(SlackRequestRefused(self._clock.now(), slack_user, user, what, why))
