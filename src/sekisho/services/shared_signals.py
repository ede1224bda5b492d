"""Shared Signals as interfaces call them (`core.shared_signals`): the transmitter's
configuration and keys, a receiver's streams, and SETs pushed to sekisho."""

from __future__ import annotations

from typing import Any

from sekisho.domain.actor import Actor
from sekisho.operations.shared_signals import (
    CreateStream,
    DeleteStream,
    StreamRequest,
    VerifyStream,
)
from sekisho.operations.signals_received import ReceiveSignal, SignalOutcome
from sekisho.queries.shared_signals import StreamQueries
from sekisho.services.views import StreamStatusView, StreamView
from sekisho.signals import sets
from sekisho.signals.keys import SignalKeyFile

API = "/api/v1/ssf"  # where the endpoints the configuration names live


class SharedSignalsService:
    def __init__(
        self,
        issuer: str,
        keys: SignalKeyFile,
        streams: tuple[CreateStream, DeleteStream, VerifyStream],
        reads: StreamQueries,
        receive: ReceiveSignal,
    ) -> None:
        self._issuer, self._keys, self._reads, self._receive = issuer, keys, reads, receive
        self._create, self._delete, self._verify = streams

    def configuration(self) -> dict[str, Any]:
        """The transmitter's metadata (SSF 1.0 §7.1), at /.well-known/ssf-configuration."""
        base = self._issuer.rstrip("/") + API
        return {
            "spec_version": sets.SPEC_VERSION,
            "issuer": self._issuer,
            "jwks_uri": f"{base}/jwks",
            "delivery_methods_supported": [sets.PUSH_METHOD],
            "configuration_endpoint": f"{base}/streams",
            "status_endpoint": f"{base}/status",
            "verification_endpoint": f"{base}/verify",
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
            "default_subjects": "ALL",
        }

    def jwks(self) -> dict[str, Any]:
        return self._keys.jwks()

    def create_stream(self, actor: Actor, asked: StreamRequest) -> StreamView:
        stream_id = self._create.execute(actor, asked)
        return self._reads.get(actor, stream_id)

    def stream(self, actor: Actor, stream_id: str) -> StreamView:
        return self._reads.get(actor, stream_id)

    def streams(self, actor: Actor) -> list[StreamView]:
        return self._reads.listed(actor)

    def status(self, actor: Actor, stream_id: str) -> StreamStatusView:
        return self._reads.status(actor, stream_id)

    def delete_stream(self, actor: Actor, stream_id: str) -> None:
        self._delete.execute(actor, stream_id)

    def verify(self, actor: Actor, stream_id: str, state: str) -> None:
        self._verify.execute(actor, stream_id, state)

    def receive(self, token: str, authorization: str | None) -> SignalOutcome:
        return self._receive.execute(token, authorization)
