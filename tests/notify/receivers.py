"""Real receivers on 127.0.0.1 for the notification tests.

Each keeps what it accepted by delivery key, as a real receiver must (a key seen again is
answered OK and not taken twice), so "arrived exactly once" is checked where it matters.
- `HttpReceiver`: the generic webhook (verifies the HMAC signature and the timestamp) or a
  Slack incoming webhook (checks the Block Kit payload); can fail N times, or hold a request.
- `SmtpReceiver`: aiosmtpd with STARTTLS (a certificate from sekisho's own CA) and AUTH.
- `MotoServer`: a `moto_server` process; SNS topics fanned out to SQS queues to read back.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from sekisho.gateway.pki import ensure_ca, issue_certificate, server_context
from sekisho.notify.webhook import InvalidSignature, verify
from support import free_port


def wait_for(predicate: Any, seconds: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# -- HTTP: webhook and Slack -----------------------------------------------------------------


@dataclass
class HttpReceiver:
    """`kind` is "webhook" (signed JSON) or "slack" (Block Kit)."""

    kind: str
    key: bytes = b""
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> body
    order: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    hits: int = 0
    fail_next: int = 0  # answer this many requests with `fail_status`
    fail_status: int = 500
    hold_at: int | None = None  # hold the response to the Nth accepted message ...
    held: threading.Event = field(default_factory=threading.Event)  # ... set when holding
    release: threading.Event = field(default_factory=threading.Event)
    refuse: Callable[[dict[str, Any]], bool] | None = None  # answer 500 to these bodies
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def bodies(self, event: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            found = [self.accepted[k] for k in self.order]
        return [b for b in found if event is None or _event_of(b) == event]

    def handle(self, headers: Any, raw: bytes) -> tuple[int, bytes]:
        with self.lock:
            self.hits += 1
            if self.fail_next:
                self.fail_next -= 1
                return self.fail_status, b"try later"
        try:
            key = self._check(headers, raw)
        except InvalidSignature as exc:
            with self.lock:
                self.rejected.append(str(exc))
            return 401, b"bad signature"
        if self.refuse is not None and self.refuse(json.loads(raw)):
            return 500, b"cannot take this one now"
        with self.lock:
            if key in self.accepted:
                self.duplicates.append(key)
                return 200, b"ok"  # seen before: acknowledged, not taken again
            self.accepted[key] = json.loads(raw)
            self.order.append(key)
            hold = self.hold_at is not None and len(self.order) == self.hold_at
        if hold:
            self.held.set()
            self.release.wait(30)
        return 200, b"ok"

    def _check(self, headers: Any, raw: bytes) -> str:
        if self.kind == "webhook":
            return verify(self.key, headers, raw)
        payload = json.loads(raw)
        if not isinstance(payload.get("blocks"), list) or not payload.get("text"):
            raise InvalidSignature("not a Block Kit payload")
        types = [b["type"] for b in payload["blocks"]]
        if types[0] != "header" or "actions" not in types:
            raise InvalidSignature(f"unexpected blocks {types}")
        key = headers.get("X-Sekisho-Delivery", "")
        if not key:
            raise InvalidSignature("no delivery key")
        return str(key)


def _event_of(body: dict[str, Any]) -> str:
    if "event" in body:
        return str(body["event"])
    context = body["blocks"][-1]["elements"][0]["text"]  # "sekisho · EVENT at TIME"
    return str(context.split(" · ", 1)[1].split(" at ", 1)[0])


@contextmanager
def http_receiver(kind: str, key: bytes = b"") -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(kind, key)

    class Handler(BaseHTTPRequestHandler):
        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            status, body = receiver.handle(self.headers, raw)
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the sender is gone (killed mid-delivery)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()


# -- SMTP ------------------------------------------------------------------------------------


@dataclass
class Mail:
    key: str
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content()).replace("\r\n", "\n")

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content()).replace("\r\n", "\n")


@dataclass
class SmtpReceiver:
    port: int
    ca_file: Path
    username: str
    password: str
    mails: dict[str, Mail] = field(default_factory=dict)  # key -> mail
    order: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tls_sessions: int = 0
    refuse: Callable[[EmailMessage], bool] | None = None  # answer 451 to these mails
    hold_at: int | None = None  # hold the answer to the Nth accepted mail ...
    held: threading.Event = field(default_factory=threading.Event)  # ... set when holding
    release: threading.Event = field(default_factory=threading.Event)

    def to(self, address: str, event: str | None = None) -> list[Mail]:
        with self.lock:
            found = [self.mails[k] for k in self.order]
        return [
            m
            for m in found
            if address in m.rcpt_tos and (event is None or m.message["X-Sekisho-Event"] == event)
        ]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if session.ssl is None:
            return "530 STARTTLS first"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        key = str(message["X-Sekisho-Delivery"])
        if self.refuse is not None and self.refuse(message):
            return "451 4.3.0 cannot take this one now"
        with self.lock:
            if key in self.mails:
                self.duplicates.append(key)
                return "250 OK queued"
            self.mails[key] = Mail(key, envelope.mail_from, list(envelope.rcpt_tos), message)
            self.order.append(key)
            hold = self.hold_at is not None and len(self.order) == self.hold_at
        if hold:
            self.held.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
        return "250 OK queued"


@contextmanager
def smtp_receiver(directory: Path) -> Iterator[SmtpReceiver]:
    """An SMTP server on 127.0.0.1 requiring STARTTLS, then AUTH, with a sekisho-CA cert."""
    ca = ensure_ca(directory)
    leaf = issue_certificate(ca, "smtp", ["localhost"], ["127.0.0.1"], directory)
    receiver = SmtpReceiver(free_port(), ca.cert, "sekisho", "smtp-pass-" + os.urandom(4).hex())

    def authenticator(
        _server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (
            data.login.decode(),
            data.password.decode(),
        ) == (receiver.username, receiver.password)
        return AuthResult(success=ok, handled=False)  # handled=False: answer 535

    controller = Controller(
        receiver,
        hostname="127.0.0.1",
        port=receiver.port,
        tls_context=server_context(leaf),
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        controller.stop()


# -- SNS through moto_server -----------------------------------------------------------------


class MotoServer:
    """`moto_server -p PORT` in a child process: SNS (and SQS to read what SNS published)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = directory / "moto.log"
        binary = Path(sys.executable).parent / "moto_server"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(binary), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto_server did not start: {self.log.read_text()}"
                    ) from None
                time.sleep(0.05)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing"
        ).client(service, region_name="us-east-1", endpoint_url=self.endpoint)

    def topic_with_queue(self, name: str) -> tuple[str, str]:
        """A topic, and an SQS queue subscribed to it: (topic ARN, queue URL)."""
        sns, sqs = self.client("sns"), self.client("sqs")
        arn = sns.create_topic(Name=name)["TopicArn"]
        queue = sqs.create_queue(QueueName=f"{name}-q")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
        return arn, queue

    def received(self, queue: str) -> list[dict[str, Any]]:
        """Every SNS notification that reached the queue so far (the SNS envelope)."""
        sqs = self.client("sqs")
        found = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return found
            for item in batch:
                found.append(json.loads(item["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=item["ReceiptHandle"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def sns_key(envelope: dict[str, Any]) -> str:
    return str(envelope["MessageAttributes"]["sekisho.delivery"]["Value"])


def sns_event(envelope: dict[str, Any]) -> str:
    return str(envelope["MessageAttributes"]["sekisho.event"]["Value"])
