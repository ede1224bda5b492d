"""Both ends of Shared Signals that sekisho talks to, real and on 127.0.0.1.

- `SetReceiver`: an RFC 8935 push endpoint, as a downstream app would run it. It checks each
  SET it is pushed as RFC 8417, SSF 1.0 and RFC 9493 say, with joserfc, against the keys
  sekisho publishes: the signature (ES256, the JWKS's kid), `typ: secevent+jwt`, `iss`,
  `aud`, `iat`, a `jti` (kept: a second push of one is acknowledged, not taken twice), one
  event, a `sub_id` and no `sub`. It answers 202, or 400 with an RFC 8935 error.
- `SetTransmitter`: an IdP's side: its own key, its JWKS served over HTTP, SETs signed with it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"


class Refused(Exception):
    def __init__(self, err: str, description: str) -> None:
        super().__init__(description)
        self.err = err


@dataclass
class SetReceiver:
    """Takes SETs from `issuer` for `audience`, checked against `keys` (sekisho's JWKS)."""

    issuer: str
    audience: str
    keys: KeySet | None = None
    bearer: str | None = None  # the Authorization header it requires, if any
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # jti -> claims
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)  # jti -> JOSE header
    order: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    fail_next: int = 0  # refuse this many pushes with `fail_err` (as a broken receiver)
    fail_err: str = "invalid_audience"
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            found = [self.accepted[j] for j in self.order]
        return [c for c in found if event_type is None or event_type in c["events"]]

    def handle(self, headers: Any, raw: bytes) -> tuple[int, dict[str, Any] | None]:
        try:
            if self.bearer is not None and headers.get("Authorization") != self.bearer:
                raise Refused("authentication_failed", "bearer token required")
            if headers.get("Content-Type") != "application/secevent+jwt":
                raise Refused("invalid_request", "Content-Type must be application/secevent+jwt")
            with self.lock:
                if self.fail_next:
                    self.fail_next -= 1
                    raise Refused(self.fail_err, "refused, as told")
            header, claims = self._check(raw.decode())
        except Refused as refused:
            with self.lock:
                self.refusals.append(refused.err)
            return 400, {"err": refused.err, "description": str(refused)}
        with self.lock:
            if claims["jti"] in self.accepted:
                self.duplicates.append(claims["jti"])
            else:
                self.accepted[claims["jti"]] = claims
                self.headers[claims["jti"]] = header
                self.order.append(claims["jti"])
        return 202, None

    def _check(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        assert self.keys is not None, "the receiver has not fetched sekisho's keys"
        try:
            decoded = jwt.decode(token, self.keys, algorithms=["ES256"])
        except JoseError as exc:
            raise Refused("invalid_key", f"signature: {exc}") from None
        header, claims = dict(decoded.header), dict(decoded.claims)
        if header.get("typ") != "secevent+jwt":
            raise Refused("invalid_request", "typ is not secevent+jwt (RFC 8417 §2.3)")
        if claims.get("iss") != self.issuer:
            raise Refused("invalid_issuer", f"iss {claims.get('iss')!r}")
        aud = claims.get("aud")
        if self.audience not in (aud if isinstance(aud, list) else [aud]):
            raise Refused("invalid_audience", f"aud {aud!r}")
        if not isinstance(claims.get("iat"), int) or abs(claims["iat"] - time.time()) > 300:
            raise Refused("invalid_request", "iat missing or far from now")
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            raise Refused("invalid_request", "no jti")
        if "sub" in claims or "exp" in claims:
            raise Refused("invalid_request", "SSF 1.0: no sub, no exp in a SET")
        events = claims.get("events")
        if not isinstance(events, dict) or len(events) != 1:
            raise Refused("invalid_request", "exactly one event")
        subject = claims.get("sub_id")
        if not isinstance(subject, dict) or subject.get("format") not in {
            "email",
            "opaque",
            "complex",
        }:
            raise Refused("invalid_request", f"sub_id {subject!r} (RFC 9493)")
        return header, claims


@contextmanager
def set_receiver(issuer: str, audience: str, bearer: str | None = None) -> Iterator[SetReceiver]:
    receiver = SetReceiver(issuer, audience, bearer=bearer)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, body = receiver.handle(self.headers, raw)
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            pass

    with _serving(Handler) as port:
        receiver.port = port
        yield receiver


@dataclass
class SetTransmitter:
    """An IdP pushing SETs: its own ES256 key, its JWKS at `jwks_uri`."""

    issuer: str = "https://idp.example.test"
    key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", auto_kid=True))
    port: int = 0
    fetches: int = 0
    clock: Callable[[], float] = time.time  # what its iat says now (the tests' clock)

    @property
    def jwks_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"

    def jwks(self) -> dict[str, Any]:
        self.fetches += 1
        return {"keys": [self.key.as_dict(private=False)]}

    def rotate(self) -> None:
        self.key = ECKey.generate_key("P-256", auto_kid=True)

    def set(
        self,
        subject: dict[str, Any],
        *,
        event_type: str = SESSION_REVOKED,
        event: dict[str, Any] | None = None,
        audience: str = "https://sekisho.example.test",
        jti: str | None = None,
        age: float = 0.0,  # seconds before now (negative: in the future)
        key: ECKey | None = None,
        drop: tuple[str, ...] = (),
        **overrides: Any,
    ) -> str:
        """A signed SET; `overrides` replace claims, `drop` removes some, `header_typ`
        replaces the JOSE header's typ."""
        signer = key or self.key
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "jti": jti or uuid.uuid4().hex,
            "iat": int(self.clock() - age),
            "sub_id": subject,
            "events": {event_type: event if event is not None else _default_event()},
        }
        typ = overrides.pop("header_typ", "secevent+jwt")
        claims.update(overrides)
        for name in drop:
            claims.pop(name, None)
        header = {"alg": "ES256", "kid": signer.kid, **({"typ": typ} if typ else {})}
        return jwt.encode(header, claims, signer)


def _default_event() -> dict[str, Any]:
    return {
        "event_timestamp": int(time.time()),
        "initiating_entity": "policy",
        "reason_admin": {"en": "Malware detected on the device"},
    }


@contextmanager
def set_transmitter() -> Iterator[SetTransmitter]:
    transmitter = SetTransmitter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(transmitter.jwks()).encode()
            self.send_response(200 if self.path == "/jwks" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    with _serving(Handler) as port:
        transmitter.port = port
        yield transmitter


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
