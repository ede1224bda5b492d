"""A stand-in for PagerDuty's REST API v2, for contract tests: `GET /oncalls` answered as
PagerDuty documents it (the "List all of the on-calls" example response: `oncalls` entries
with `escalation_policy`, `escalation_level`, `schedule`, `user` (a full user with
`include[]=users`), `start`, `end`; classic pagination `limit`/`offset`/`more`), and 401
without `Authorization: Token token=KEY`. sekisho calls it with PagerDuty's own client."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from standin_server import JsonHandler, serving


@dataclass
class Shift:
    schedule: str
    email: str
    escalation_level: int
    start: str = "2026-12-01T09:00:00Z"
    end: str = "2027-01-01T09:00:00Z"


@dataclass
class PagerDutyStandIn:
    token: str
    shifts: list[Shift] = field(default_factory=list)
    asked: list[dict[str, list[str]]] = field(default_factory=list)
    url: str = ""
    ca_file: str = ""
    failing: int | None = None  # answer every call with this status

    def oncalls(self, query: dict[str, list[str]]) -> dict[str, Any]:
        schedules = set(query.get("schedule_ids[]", []))
        entries = [self._entry(s) for s in self.shifts if s.schedule in schedules]
        return {"oncalls": entries, "limit": 25, "offset": 0, "more": False, "total": None}

    def _entry(self, shift: Shift) -> dict[str, Any]:
        name = shift.email.split("@")[0]
        return {
            "escalation_policy": {
                "id": "PT20YPA",
                "type": "escalation_policy_reference",
                "summary": "Production on call",
            },
            "escalation_level": shift.escalation_level,
            "schedule": {
                "id": shift.schedule,
                "type": "schedule_reference",
                "summary": "Daily Engineering Rotation",
            },
            "user": {"id": "PT23IWX", "type": "user", "name": name, "email": shift.email},
            "start": shift.start,
            "end": shift.end,
        }


def _handler(pd: PagerDutyStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            pd.asked.append(query)
            if self.headers.get("Authorization") != f"Token token={pd.token}":
                self._send(401, {"error": {"message": "Unauthorized", "code": 2006}})
            elif pd.failing is not None:
                self._send(pd.failing, {"error": {"message": "Internal Error", "code": 2000}})
            elif parts.path == "/oncalls":
                self._send(200, pd.oncalls(query))
            else:
                self._send(404, {"error": {"message": "Not Found", "code": 2100}})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            self.send_json(status, body, "application/json")

    return Handler


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA (PagerDuty's client speaks only https):
    (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pagerduty stand-in")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "pd.crt", directory / "pd.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def running_pagerduty(
    token: str, shifts: list[Shift], directory: Path
) -> Iterator[PagerDutyStandIn]:
    """The stand-in on https://127.0.0.1:PORT; its CA is `directory/pd.crt`."""
    pd = PagerDutyStandIn(token, list(shifts))
    cert, key = self_signed(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving(_handler(pd), context) as server:
        pd.url = f"https://127.0.0.1:{server.server_address[1]}"
        pd.ca_file = str(cert)
        yield pd
