"""Shared Signals' use cases: a receiver's push streams (create, delete, verify), and a SET
pushed to sekisho (ReceiveSignal), which applies the model's rule to the user it is about."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Conflict, InvalidInput, NotFound
from sekisho.domain.events import StreamCreated, StreamDeleted, StreamVerificationRequested
from sekisho.domain.text import SHORT_TEXT, check_text
from sekisho.notify.base import parses_as_url, safe_transport
from sekisho.ports import ModelSource
from sekisho.services import permissions
from sekisho.services.secretbox import SecretBox
from sekisho.signals import sets, streams
from sekisho.store.tables import SsfStreamRow
from sekisho.store.unit_of_work import Store

MAX_STREAMS = 20
MAX_HEADER = 4096
MAX_STATE = 256


@dataclass(frozen=True)
class StreamRequest:
    """A stream as a receiver asks for it (SSF 1.0 §8.1.1), read at the boundary."""

    method: str
    endpoint_url: str
    events_requested: tuple[str, ...] = ()
    authorization_header: str | None = None
    description: str = ""
    audience: str | None = None


class CreateStream:
    def __init__(self, store: Store, clock: Clock, models: ModelSource, box: SecretBox) -> None:
        self._store, self._clock, self._models, self._box = store, clock, models, box

    def execute(self, actor: Actor, asked: StreamRequest) -> str:
        """The new stream's id. Refused, nothing stored, for a method other than push, an
        endpoint that is not https (http only to loopback), or a header with a line break."""
        row = _checked(asked)
        now = self._clock.now()
        with self._store.write() as uow:
            model = self._models.model(uow.session)
            permissions.require_admin(model, actor, "register Shared Signals streams")
            if len(streams.listed(uow.session)) >= MAX_STREAMS:
                raise Conflict(f"at most {MAX_STREAMS} streams; delete one first")
            row.stream_id = secrets.token_urlsafe(16)
            row.created_by, row.created_at = actor.name, now
            if asked.authorization_header:
                row.authorization = self._box.seal(asked.authorization_header)
            uow.session.add(row)
            events = tuple(row.events_requested)
            uow.record(StreamCreated(now, row.stream_id, row.endpoint_url, events, actor))
            return row.stream_id


def _checked(asked: StreamRequest) -> SsfStreamRow:
    if asked.method != sets.PUSH_METHOD:
        raise InvalidInput.one(
            "delivery.method", "push_only", f"sekisho delivers by push only ({sets.PUSH_METHOD})"
        )
    url = check_text("delivery.endpoint_url", asked.endpoint_url, max_length=2048)
    if not (parses_as_url(url) and safe_transport(url)):
        raise InvalidInput.one(
            "delivery.endpoint_url",
            "transport",
            "must be an https URL (http only to a loopback address)",
        )
    header = asked.authorization_header
    if header is not None and (len(header) > MAX_HEADER or not header.isprintable()):
        raise InvalidInput.one(
            "delivery.authorization_header",
            "header_value",
            f"at most {MAX_HEADER} printable characters, on one line",
        )
    audience = check_text("aud", asked.audience or url, max_length=512)
    return SsfStreamRow(
        audience=audience,
        endpoint_url=url,
        events_requested=_delivered(asked.events_requested),
        description=check_text("description", asked.description, max_length=SHORT_TEXT),
    )


def _delivered(requested: tuple[str, ...]) -> list[str]:
    """What the stream will get: the requested events sekisho sends; none asked, all."""
    if not requested:
        return list(sets.EVENTS_SUPPORTED)
    return [e for e in sets.EVENTS_SUPPORTED if e in requested]


class DeleteStream:
    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def execute(self, actor: Actor, stream_id: str) -> None:
        """Its SETs not yet pushed are given up (their channel is gone)."""
        now = self._clock.now()
        with self._store.write() as uow:
            model = self._models.model(uow.session)
            permissions.require_admin(model, actor, "delete Shared Signals streams")
            if not streams.remove(uow.session, stream_id):
                raise NotFound(f"no stream {stream_id[:64]!r}")
            uow.record(StreamDeleted(now, stream_id, actor))


class VerifyStream:
    def __init__(self, store: Store, clock: Clock, models: ModelSource) -> None:
        self._store, self._clock, self._models = store, clock, models

    def execute(self, actor: Actor, stream_id: str, state: str) -> None:
        """Queue a verification SET carrying `state` to the stream's receiver."""
        state = check_text("state", state, max_length=MAX_STATE)
        now = self._clock.now()
        with self._store.write() as uow:
            model = self._models.model(uow.session)
            permissions.require_admin(model, actor, "verify Shared Signals streams")
            row = streams.stream(uow.session, stream_id)
            if row is None:
                raise NotFound(f"no stream {stream_id[:64]!r}")
            uow.record(StreamVerificationRequested(now, stream_id, row.audience, state, actor))
