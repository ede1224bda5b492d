"""11. Notifications: dispatch throughput to a webhook, and what the outbox adds to filing.

**Dispatch throughput.** N messages wait in the outbox of a fresh database; one
`Dispatcher.run_pass()` (what `sekisho notify dispatch` and the loop in `sekisho serve` run)
claims them under a lease, sends each as a signed webhook and records each delivery, to a
receiver in a child process on 127.0.0.1 that verifies every signature and keeps every
delivery key (its count must equal N, with no duplicate). The clock runs for the whole pass.
The peer is the HTTP floor: the same receiver, the same signed requests from the same sender
class, sent by a bare loop on one keep-alive connection, with no outbox, no claim and no
record.

**Filing latency.** The service call that files a request (`WorkflowService.file`, in this
process, SystemClock) on two fresh databases side by side, alternating which goes first: one
with the benchmark model as is (the peer), one whose model routes `approval.needed` to a
webhook, a Slack channel and personal e-mail to the five approvers, so that each filing also
writes seven outbox rows in its transaction. Nothing is sent meanwhile (no dispatcher): the
difference is the outbox's own cost. Each request is cancelled afterwards, untimed, so its
member may file again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bench.backends import BENCH, MODEL_PATH, Backend, open_core
from bench.report import Section, Table
from bench.server import ROOT, free_port
from bench.stats import Summary, fmt, fmt_ratio, median, ratio
from sekisho.bootstrap import Core
from sekisho.domain.actor import Actor
from sekisho.domain.drafts import RequestDraft
from sekisho.notify.base import Delivery
from sekisho.notify.message import Message
from sekisho.notify.webhook import WebhookSender
from sekisho.store.tables import NotificationRow

KEY = "notify"
KEY_ENV = "SEKISHO_BENCH_NOTIFY_KEY"
SLACK_ENV = "SEKISHO_BENCH_SLACK_URL"
T = TypeVar("T")
Timed = Callable[[str, Callable[[], T]], T]


@dataclass(frozen=True)
class NotifyPlan:
    dispatch_n: int  # messages per dispatch pass
    rounds: int  # passes (and peer loops), alternating
    file_n: int  # filings per database
    warmup: int


FULL = NotifyPlan(dispatch_n=2_000, rounds=3, file_n=300, warmup=20)
QUICK = NotifyPlan(dispatch_n=200, rounds=1, file_n=40, warmup=5)


@dataclass
class BackendResult:
    dispatch_rates: list[float] = field(default_factory=list)  # messages/s, per pass
    peer_rates: list[float] = field(default_factory=list)  # requests/s, bare loop
    duplicates: int = 0
    rejected: int = 0
    plain_ms: list[float] = field(default_factory=list)  # filing, no notifications
    routed_ms: list[float] = field(default_factory=list)  # filing, 7 outbox rows
    rows_per_filing: float = 0.0


@dataclass
class NotifyResult:
    plan: NotifyPlan
    backends: dict[str, BackendResult] = field(default_factory=dict)


def run(
    plan: NotifyPlan, workdir: Path, backends: list[Backend], timed: Timed[Any]
) -> NotifyResult:
    result = NotifyResult(plan)
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ[KEY_ENV] = os.urandom(32).hex()
    os.environ[SLACK_ENV] = "http://127.0.0.1:9/never-sent"
    with Receiver(workdir) as receiver:
        for backend in backends:
            print(f"{backend.name}:", flush=True)
            r = result.backends[backend.name] = BackendResult()
            data = workdir / backend.name.lower()
            timed("dispatch throughput", partial(dispatch, plan, backend, data, receiver, r))
            timed("filing latency", partial(filing, plan, backend, data, receiver, r))
    return result


# -- the receiver ---------------------------------------------------------------------------------


class Receiver:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._log = workdir / "receiver.log"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Receiver:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.notify_receiver",
                *("--port", str(self.port), "--key-env", KEY_ENV),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log.open("wb"),
        )
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the receiver did not start: {self._log.read_text()}")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def stats(self) -> dict[str, int]:
        counts: dict[str, int] = httpx.get(f"http://127.0.0.1:{self.port}/stats").json()
        return counts


# -- dispatch throughput --------------------------------------------------------------------------


def notify_model(receiver: Receiver) -> str:
    """The benchmark model, with e-mail addresses and every approval notice routed."""
    text = MODEL_PATH.read_text(encoding="utf-8")
    text = re.sub(
        r"- \{ name: (leader\d\d|admin01) \}", r"- { name: \1, email: \1@example.com }", text
    )
    return text + (
        "\nnotifications:\n"
        "  channels:\n"
        f'    - {{name: hook, type: webhook, url: "{receiver.url}", secret_env: {KEY_ENV}}}\n'
        f"    - {{name: team, type: slack, url_env: {SLACK_ENV}}}\n"
        "    - {name: mail, type: email, host: 127.0.0.1, port: 9, sender: s@example.com}\n"
        "  routes:\n"
        "    - {events: [approval.needed], channels: [hook, team, mail]}\n"
    )


def message(i: int) -> Message:
    """About as large as a real approval notice."""
    return Message(
        event="approval.needed",
        title=f"Request #{i} needs approval: member01 in ProdMemberWorkGroup",
        summary="Member One (member01) asks to join ProdMemberWorkGroup for 1h from the "
        "approval. It waits at level 1 of 1: 1 approval(s) from ChangeApprovalGroup.",
        link=f"https://sekisho.example.com/requests/{i}",
        link_label=f"Review request #{i}",
        occurred_at="2026-11-29T09:00:00Z",
        facts=(
            ("Request", f"#{i} (AddUserToGroup)"),
            ("User", "Member One (member01)"),
            ("Group", "ProdMemberWorkGroup"),
            ("Access", "for 1h from the approval"),
            ("Reason", "benchmark: fix the payment console"),
            ("Target", "payment admin console"),
            ("Change content", "rotate the merchant API key"),
            ("Rollback plan", "restore the previous key"),
        ),
        request_id=i,
        template="AddUserToGroup",
        recipients=tuple((f"leader0{n}", "approver") for n in range(1, 6)),
    )


def fill(core: Core, n: int) -> None:
    now = core.now()
    with core.db.write() as s:
        s.add_all(
            NotificationRow(
                key=uuid.uuid4().hex,
                event="approval.needed",
                channel="hook",
                request_id=i,
                message=message(i).to_json(),
                status="pending",
                attempts=0,
                created_at=now,
                next_at=now,
            )
            for i in range(1, n + 1)
        )


def dispatch(
    plan: NotifyPlan, backend: Backend, data: Path, receiver: Receiver, r: BackendResult
) -> None:
    with backend.database(data, "notify-dispatch") as url:
        core = open_core(url, data)
        core.models.load(notify_model(receiver), "notify.yaml", BENCH)
        sender = WebhookSender(receiver.url, os.environ[KEY_ENV].encode(), timeout=10)
        try:
            peer(sender, plan.warmup)  # connections and caches warm on both sides
            for _ in range(plan.rounds):
                before = receiver.stats()
                fill(core, plan.dispatch_n)
                t0 = time.perf_counter()
                report = core.new_dispatcher().run_pass()
                elapsed = time.perf_counter() - t0
                after = receiver.stats()
                got = after["accepted"] - before["accepted"]
                if len(report.delivered) != plan.dispatch_n or got != plan.dispatch_n:
                    raise RuntimeError(
                        f"dispatched {len(report.delivered)}, received {got} of {plan.dispatch_n}"
                    )
                r.dispatch_rates.append(plan.dispatch_n / elapsed)
                r.duplicates += after["duplicates"] - before["duplicates"]
                r.rejected += after["rejected"] - before["rejected"]
                r.peer_rates.append(peer(sender, plan.dispatch_n))
        finally:
            sender.close()
            core.db.dispose()


def peer(sender: WebhookSender, n: int) -> float:
    """The same signed webhook, sent n times in a bare loop: requests per second."""
    deliveries = [Delivery(uuid.uuid4().hex, "approval.needed", message(i)) for i in range(n)]
    t0 = time.perf_counter()
    for delivery in deliveries:
        sender.send(delivery)
    return n / (time.perf_counter() - t0)


# -- filing latency -------------------------------------------------------------------------------


DRAFT = RequestDraft(
    template="AddUserToGroup",
    group="ProdMemberWorkGroup",
    reason="benchmark: fix the payment console",
    duration="1h",
    info={
        "target": "payment admin console",
        "change": "rotate the merchant API key",
        "rollback": "restore the previous key",
    },
)


def filing(
    plan: NotifyPlan, backend: Backend, data: Path, receiver: Receiver, r: BackendResult
) -> None:
    with (
        backend.database(data, "notify-plain") as plain_url,
        backend.database(data, "notify-routed") as routed_url,
    ):
        plain, routed = open_core(plain_url, data), open_core(routed_url, data)
        try:
            plain.models.load(MODEL_PATH.read_text(encoding="utf-8"), str(MODEL_PATH), BENCH)
            routed.models.load(notify_model(receiver), "notify.yaml", BENCH)
            members = [f"member{i:02d}" for i in range(1, 51)]
            for i in range(plan.warmup + plan.file_n):
                actor = Actor(members[i % len(members)], "bench")
                pair = [(plain, r.plain_ms), (routed, r.routed_ms)]
                for core, sink in pair if i % 2 else reversed(pair):
                    t0 = time.perf_counter()
                    filed = core.workflow.file(actor, DRAFT)
                    ms = (time.perf_counter() - t0) * 1000
                    core.workflow.cancel(actor, filed.id)
                    if i >= plan.warmup:
                        sink.append(ms)
            with routed.db.read() as s:
                rows = s.query(NotificationRow).filter_by(event="approval.needed").count()
            r.rows_per_filing = rows / (plan.warmup + plan.file_n)
        finally:
            plain.db.dispose()
            routed.db.dispose()


# -- the report -----------------------------------------------------------------------------------


def sections(result: NotifyResult) -> list[Section]:
    title, _, method = (__doc__ or "").strip().partition("\n")
    plan = result.plan
    dispatch_table = Table(
        [
            "database",
            "messages per pass",
            "dispatch (messages/s), median of passes",
            "peer: bare signed POST loop (requests/s)",
            "ratio",
            "duplicates at the receiver",
        ]
    )
    filing_table = Table(
        [
            "database",
            "n",
            "file, 7 outbox rows p50 / p99 (ms)",
            "peer: file, no notifications p50 / p99 (ms)",
            "added p50 (ms)",
            "ratio p50 / p99",
        ]
    )
    notes = []
    for name, r in result.backends.items():
        rate, floor = median(r.dispatch_rates), median(r.peer_rates)
        dispatch_table.add(
            name,
            f"{plan.dispatch_n:,}",
            fmt(rate),
            fmt(floor),
            fmt_ratio(ratio(rate, floor)),
            str(r.duplicates),
        )
        routed, plain = Summary.of(r.routed_ms), Summary.of(r.plain_ms)
        filing_table.add(
            name,
            str(routed.n),
            f"{fmt(routed.p50)} / {fmt(routed.p99)}",
            f"{fmt(plain.p50)} / {fmt(plain.p99)}",
            fmt(routed.p50 - plain.p50),
            f"{fmt_ratio(ratio(routed.p50, plain.p50))} / "
            f"{fmt_ratio(ratio(routed.p99, plain.p99))}",
        )
        if r.rejected:
            notes.append(f"{name}: the receiver rejected {r.rejected} signature(s).")
        notes.append(
            f"{name}: {r.rows_per_filing:g} approval notices written per filing "
            "(webhook, Slack, five personal e-mails)."
        )
    notes.insert(
        0,
        f"{plan.rounds} pass(es) of {plan.dispatch_n:,} messages per database, each followed "
        "by a peer loop of as many requests; the dispatcher sends one channel's messages in "
        "order on one connection and records them in batches (at most 16, or 50 ms).",
    )
    return [
        Section(title.strip().rstrip("."), method, [dispatch_table, filing_table], notes, key=KEY)
    ]
