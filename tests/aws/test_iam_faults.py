"""IAM misbehaving: throttling and 5xx (from a small proxy in front of moto), and IAM down
at the end of a grant: retried until IAM confirms, never marked done before."""

from __future__ import annotations

import http.server
import threading
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest
from aws_support import World, aws_model_text, core_on

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.domain.access import Verb
from sekisho.domain.grants import GrantStatus
from sekisho.store.tables import GrantRow
from support import LEADER, MEMBER, draft

WORK = "ProdMemberWorkGroup"
UNAVAILABLE = (
    b"<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
    b"<Message>Service Unavailable</Message></Error><RequestId>1</RequestId></ErrorResponse>"
)
THROTTLED = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
    b"<Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>"
)


class FaultyProxy:
    """Forwards to moto; fails the next `failures` requests (429-style throttling or 503),
    or every request while `down`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.failures = 0
        self.kind = "throttle"
        self.down = False
        self.failed = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if proxy.down or proxy.failures > 0:
                    proxy.failures = max(0, proxy.failures - 1)
                    proxy.failed += 1
                    throttle = proxy.kind == "throttle" and not proxy.down
                    self.send_response(400 if throttle else 503)
                    payload = THROTTLED if throttle else UNAVAILABLE
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = dict(self.headers.items())  # Host too: it is signed (SigV4)
                request = urllib.request.Request(
                    proxy.upstream + self.path, data=body, headers=headers, method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        status, data = answer.status, answer.read()
                except urllib.error.HTTPError as error:
                    status, data = error.code, error.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def proxy(world: World) -> Iterator[FaultyProxy]:
    faulty = FaultyProxy(world.moto.url)
    yield faulty
    faulty.close()


@pytest.fixture
def faulty_core(
    db_url: str, clock: ManualClock, world: World, proxy: FaultyProxy, settings: Settings
) -> Iterator[Core]:
    """sekisho talking to IAM through the faulty proxy."""
    core = core_on(db_url, clock, settings, aws_model_text(proxy.url))
    yield core
    core.db.dispose()


def grant_status(core: Core, grant_id: int) -> GrantRow:
    with core.db.read() as s:
        return s.get_one(GrantRow, grant_id)


@pytest.mark.parametrize("kind", ["throttle", "5xx"])
def test_throttling_and_5xx_are_retried_with_backoff(
    faulty_core: Core, world: World, proxy: FaultyProxy, kind: str
) -> None:
    proxy.kind, proxy.failures = kind, 3
    request = faulty_core.workflow.file(MEMBER, draft(duration="1h"))
    done = faulty_core.workflow.approve(LEADER, request.id, "ok")
    assert done.status == "succeeded", [t.message for t in done.timeline]
    assert proxy.failed == 3  # each was retried, then IAM confirmed
    assert world.members(WORK) == {"member01"}


def test_iam_down_at_the_end_keeps_the_grant_ending_until_iam_confirms(
    faulty_core: Core, world: World, proxy: FaultyProxy, clock: ManualClock
) -> None:
    request = faulty_core.workflow.file(MEMBER, draft(duration="1h"))
    grant = faulty_core.workflow.approve(LEADER, request.id, "ok").grant
    assert grant is not None
    proxy.down = True
    clock.advance(timedelta(hours=1))
    report = faulty_core.sweeper.run_due()
    assert grant.id in report.still_failing
    row = grant_status(faulty_core, grant.id)
    assert row.status == GrantStatus.ENDING  # never marked done before IAM confirmed
    assert "ServiceUnavailable" in (row.last_error or "")  # why, on record
    assert world.members(WORK) == {"member01"}  # IAM still has it ...
    assert not faulty_core.authz.decide("member01", Verb.ASSUME, "prod/Prod_MemberRole").allowed

    proxy.down = False  # ... until IAM is back and the retry comes round
    clock.advance(timedelta(minutes=5))
    again = faulty_core.sweeper.run_due()
    assert again.retried == [grant.id]
    assert grant_status(faulty_core, grant.id).status == GrantStatus.EXPIRED
    assert world.members(WORK) == set()
