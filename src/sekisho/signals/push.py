"""Pushing SETs to a stream's receiver (RFC 8935), and the streams as channels of the outbox.

A SET is signed when it is sent, with the row's idempotency key as its `jti`: a retry sends
the same `jti` (a receiver that saw it drops it) with a fresh `iat`. The receiver answers
202 Accepted, or 400 with `{"err": ..., "description": ...}`; that answer is the error the
outbox keeps and `sekisho notify status` shows (the token and the bearer never are).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from joserfc.jwk import ECKey

from sekisho.domain.access import AccessModel, Channel, ChannelType
from sekisho.notify.base import Delivery, DeliveryFailed, HttpPoster, Sender
from sekisho.services.secretbox import SecretBox
from sekisho.signals import sets, streams
from sekisho.store.db import Database

TIMEOUT_S = 10.0


class SetPushSender(HttpPoster):
    def __init__(
        self,
        url: str,
        key: ECKey,
        issuer: str,
        *,
        authorization: str | None = None,
        timeout: float = TIMEOUT_S,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(url, timeout=timeout, secret_url=False)
        self._key, self._issuer, self._wall = key, issuer, wall
        self._authorization = authorization

    def send(self, delivery: Delivery) -> str:
        data = delivery.message.data
        token = sets.sign(self._key, self._claims(delivery.key, data))
        headers = {"Content-Type": sets.MEDIA_TYPE, "Accept": "application/json"}
        if self._authorization:
            headers["Authorization"] = self._authorization
        response = self.post(token.encode(), headers)
        if response.is_success:
            return f"HTTP {response.status_code}"
        raise DeliveryFailed(_refusal(response))

    def _claims(self, jti: str, data: dict[str, Any]) -> dict[str, Any]:
        return sets.claims(
            issuer=self._issuer,
            audience=str(data["aud"]),
            jti=jti,
            issued_at=int(self._wall()),
            event_type=str(data["event_type"]),
            event=dict(data["event"]),
            subject=dict(data["sub_id"]),
        )


def _refusal(response: httpx.Response) -> str:
    """The receiver's RFC 8935 error, as text safe to keep (it is theirs, cut short)."""
    said = f"HTTP {response.status_code} {response.reason_phrase}"
    try:
        body = response.json()
    except ValueError:
        return said
    if isinstance(body, dict) and isinstance(body.get("err"), str):
        description = str(body.get("description") or "")[:200]
        return f"{said}: {body['err'][:64]}" + (f" ({description})" if description else "")
    return said


class StreamChannels:
    """The outbox's channels: the model's, and one per registered stream (`ssf:<id>`)."""

    def __init__(self, db: Database, box: SecretBox, key: Callable[[], ECKey], issuer: str) -> None:
        self._db, self._box, self._key, self._issuer = db, box, key, issuer

    def channel(self, model: AccessModel, name: str) -> Channel | None:
        stream_id = streams.stream_of_channel(name)
        if stream_id is None:
            return model.notifications.channel(name)
        with self._db.read() as s:
            row = streams.stream(s, stream_id)
            return Channel(name, ChannelType.SSF, url=row.endpoint_url) if row else None

    def why_gone(self, name: str) -> str:
        stream_id = streams.stream_of_channel(name)
        if stream_id is None:
            return f"channel {name} is no longer in the model"
        return f"stream {stream_id} was deleted"

    def senders(self, others: Callable[[Channel], Sender]) -> Callable[[Channel], Sender]:
        """A sender factory: a stream's pusher for a stream, `others` for the rest."""

        def open_sender(channel: Channel) -> Sender:
            if channel.type is ChannelType.SSF:
                return self.pusher(channel.name)
            return others(channel)

        return open_sender

    def pusher(self, name: str) -> SetPushSender:
        stream_id = streams.stream_of_channel(name) or ""
        with self._db.read() as s:
            row = streams.stream(s, stream_id)
            if row is None:
                raise DeliveryFailed(f"stream {stream_id} was deleted")
            url, sealed = row.endpoint_url, row.authorization
        authorization = self._box.open(sealed) if sealed else None
        return SetPushSender(url, self._key(), self._issuer, authorization=authorization)
