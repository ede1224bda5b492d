"""`python -m bench [--quick] [--only NAME ...] [--output PATH]`: measure, then write RESULTS.md."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import httpx

from bench import (
    approval,
    aws,
    expiry,
    gateway,
    login,
    machine,
    notify,
    report,
    sweep,
    throughput,
)
from bench.api import People
from bench.backends import Backend, enroll, load_bench_model, open_core, postgres_version
from bench.report import Section
from bench.server import ServerProcess

HERE = Path(__file__).resolve().parent
POSTGRES_ENV = "SEKISHO_BENCH_POSTGRES_URL"
CORE = ("approval", "expiry", "throughput", "sweep")
MEASUREMENTS = (*CORE, gateway.KEY, aws.KEY, notify.KEY, login.KEY)
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    members: int
    approvers: int
    approval_n: int
    timer_n: int
    expiry_waves: int
    expiry_per_wave: int
    concurrencies: list[int]
    warmup_s: float
    window_s: float
    sweep_stored: int
    sweep_due: int
    sweep_runs: int


FULL = Plan(
    members=50,
    approvers=5,
    approval_n=200,
    timer_n=300,
    expiry_waves=10,
    expiry_per_wave=10,
    concurrencies=[1, 8],
    warmup_s=2.0,
    window_s=6.0,
    sweep_stored=100_000,
    sweep_due=1_000,
    sweep_runs=3,
)
QUICK = Plan(
    members=10,
    approvers=2,
    approval_n=20,
    timer_n=100,
    expiry_waves=2,
    expiry_per_wave=4,
    concurrencies=[1, 4],
    warmup_s=0.5,
    window_s=2.0,
    sweep_stored=5_000,
    sweep_due=100,
    sweep_runs=1,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run, small numbers")
    parser.add_argument(
        "--only", action="append", choices=MEASUREMENTS, help="run only these (repeatable)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the results (default bench/RESULTS.md; --quick: RESULTS-quick.md)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(POSTGRES_ENV),
        help=f"PostgreSQL server to measure on too (default ${POSTGRES_ENV})",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    return parser.parse_args()


def timed(label: str, work: Callable[[], T]) -> T:
    print(f"  {label} ...", flush=True)
    t0 = time.perf_counter()
    value = work()
    print(f"  {label}: {time.perf_counter() - t0:.1f} s", flush=True)
    return value


def split_doc(module: ModuleType) -> tuple[str, str]:
    doc = (module.__doc__ or "").strip()
    title, _, method = doc.partition("\n")
    return title.strip().rstrip("."), method.strip()


def main() -> None:
    args = parse_args()
    plan = QUICK if args.quick else FULL
    wanted = [m for m in MEASUREMENTS if m in set(args.only or MEASUREMENTS)]
    core_wanted = [m for m in wanted if m in CORE]
    output = args.output or HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    started_at, load, t_start = machine.now(), machine.load_average(), time.perf_counter()
    backends = [] if args.no_sqlite else [Backend("SQLite")]
    if args.postgres_url:
        backends.append(Backend("PostgreSQL", args.postgres_url))
    if core_wanted and not backends:
        raise SystemExit("nothing to measure: --no-sqlite without a PostgreSQL URL")
    workdir = Path(tempfile.mkdtemp(prefix="sekisho-bench-"))
    print(f"sekisho bench ({'quick' if args.quick else 'full'}), working in {workdir}")

    approvals: dict[str, approval.ApprovalResult] = {}
    expiries: dict[str, expiry.ExpiryResult] = {}
    rates: dict[str, throughput.ThroughputResult] = {}
    sweeps: dict[str, sweep.SweepResult] = {}
    timers = expiry.TimerResult()
    gateway_result: gateway.GatewayResult | None = None
    aws_result: aws.AwsResult | None = None
    notify_result: notify.NotifyResult | None = None
    login_result: login.LoginResult | None = None
    try:
        if "expiry" in wanted:
            timers = timed("timer precision (peer)", lambda: expiry.timer_precision(plan.timer_n))
        for backend in backends if core_wanted else []:
            print(f"{backend.name}:", flush=True)
            data_dir = workdir / backend.name.lower()
            if set(wanted) & {"approval", "expiry", "throughput"}:
                server_measurements(
                    backend, data_dir, plan, set(wanted), approvals, expiries, rates
                )
            if "sweep" in wanted:
                sweeps[backend.name] = timed(
                    "sweep",
                    partial(
                        sweep.run,
                        backend,
                        data_dir,
                        plan.sweep_stored,
                        plan.sweep_due,
                        plan.sweep_runs,
                    ),
                )
        if gateway.KEY in wanted:
            print("gateway:", flush=True)
            gateway_plan = gateway.QUICK if args.quick else gateway.FULL
            gateway_result = timed(
                "gateway, all of it",
                lambda: gateway.run(gateway_plan, workdir / "gateway", timed),
            )
        if aws.KEY in wanted:
            print("aws:", flush=True)
            aws_plan = aws.QUICK if args.quick else aws.FULL
            aws_result = timed("aws, all of it", lambda: aws.run(aws_plan, workdir / "aws", timed))
        if notify.KEY in wanted:
            if not backends:
                raise SystemExit("nothing to measure: --no-sqlite without a PostgreSQL URL")
            print("notify:", flush=True)
            notify_plan = notify.QUICK if args.quick else notify.FULL
            notify_result = timed(
                "notify, all of it",
                lambda: notify.run(notify_plan, workdir / "notify", backends, timed),
            )
        if login.KEY in wanted:
            if not backends:
                raise SystemExit("nothing to measure: --no-sqlite without a PostgreSQL URL")
            print("login:", flush=True)
            login_plan = login.QUICK if args.quick else login.FULL
            login_result = timed(
                "sign-in flood, all of it",
                lambda: login.run(login_plan, workdir / "login", backends, timed),
            )
        postgres = None  # None: the row stays as the run whose sections are kept wrote it
        if core_wanted and args.postgres_url:
            postgres = postgres_version(args.postgres_url)
        elif set(CORE) <= set(wanted):
            postgres = f"not measured ({POSTGRES_ENV} not set)"
        facts = machine.facts(workdir, postgres)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    elapsed = time.perf_counter() - t_start
    summary = machine.run_summary(args.quick, started_at, load, elapsed)
    sections = build_sections(plan, approvals, expiries, timers, rates, sweeps)
    if gateway_result is not None:
        facts += gateway_result.facts()
        sections += gateway.sections(gateway_result)
    if aws_result is not None:
        facts += aws_result.facts()
        sections += aws.sections(aws_result)
    if notify_result is not None:
        sections += notify.sections(notify_result)
    if login_result is not None:
        sections += login.sections(login_result)
    report.write(
        output,
        title="sekisho benchmarks: the core's and the gateway's yardsticks",
        preface=PREFACE,
        facts=[*facts, report.run_fact(wanted, summary)],
        sections=sections,
        measured=wanted,
        order=list(MEASUREMENTS),
        legacy_key=legacy_key,
    )
    print(f"wrote {output} ({elapsed:.0f} s)")


def legacy_key(heading: str) -> str | None:
    """The measurement of a section in a file written before sections carried markers."""
    titles = {
        split_doc(module)[0]: name
        for name, module in (
            ("approval", approval),
            ("expiry", expiry),
            ("throughput", throughput),
            ("sweep", sweep),
        )
    }
    return titles.get(heading)


def server_measurements(
    backend: Backend,
    data_dir: Path,
    plan: Plan,
    wanted: set[str],
    approvals: dict[str, approval.ApprovalResult],
    expiries: dict[str, expiry.ExpiryResult],
    rates: dict[str, throughput.ThroughputResult],
) -> None:
    members = [f"member{i:02d}" for i in range(1, plan.members + 1)]
    approvers = [f"leader{i:02d}" for i in range(1, plan.approvers + 1)]
    with backend.database(data_dir, "server") as url:
        core = open_core(url, data_dir)
        load_bench_model(core)
        creds = timed("enrol users", lambda: enroll(core, [*members, *approvers]))
        core.db.dispose()
        with ServerProcess(url, data_dir) as server:
            people = People(members, approvers)
            with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
                timed("log in", lambda: people.login_all(client, creds))
            if "approval" in wanted:
                approvals[backend.name] = timed(
                    "approval -> access",
                    lambda: approval.run(server.base_url, people, plan.approval_n),
                )
            if "expiry" in wanted:
                expiries[backend.name] = timed(
                    "end-of-grant lag",
                    lambda: expiry.run(
                        server.base_url, url, people, plan.expiry_waves, plan.expiry_per_wave
                    ),
                )
            if "throughput" in wanted:
                rates[backend.name] = timed(
                    "throughput",
                    lambda: throughput.run(
                        server, people, plan.concurrencies, plan.warmup_s, plan.window_s
                    ),
                )


PREFACE = """
Written by `python -m bench` (`make bench`); do not edit by hand. Every figure stands next to a
peer measured in the same run on the same machine, and the ratio between them is the figure to
compare across machines: the absolute numbers move with the machine and its neighbours. The
server under test is what `sekisho serve` runs (`sekisho.server.serve`: the API and the expiry
scheduler, uvicorn on 127.0.0.1) in a child process, on a fresh database per backend, with the
local provider and the system clock; the load comes from this process over real HTTP.
Sections 5-8 measure the gateway: a real `sekisho serve` (API, scheduler and gateway) and a
real `sekisho forward` as child processes, against socat, `ssh -L` and the direct connection.
Section 11 measures notifications: the dispatcher in this process against a signature-checking
webhook receiver in a child process, and filing a request with and without notifications.
Section 12 measures sign-in under a flood of bogus logins: a real server with the real Argon2
parameters and refusal delay, callers from many loopback addresses over real sockets.
`--only NAME` re-measures some parts and keeps the other sections as they were; the machine
table's `run:` rows say which run measured which sections, and when.
"""


def build_sections(
    plan: Plan,
    approvals: dict[str, approval.ApprovalResult],
    expiries: dict[str, expiry.ExpiryResult],
    timers: expiry.TimerResult,
    rates: dict[str, throughput.ThroughputResult],
    sweeps: dict[str, sweep.SweepResult],
) -> list[Section]:
    sections = []
    if approvals:
        title, method = split_doc(approval)
        notes = [
            "The ratio is approval-to-access over one healthz round trip: how many framework "
            "round trips the approval (decision, runbook, provider, audit) plus one access "
            "decision cost.",
        ]
        for name, r in approvals.items():
            if r.raced or r.extra_tries:
                notes.append(
                    f"{name}: {r.raced} of {len(r.access_ms)} approvals answered before the "
                    "grant was provisioned (the scheduler, woken by the approval's event, "
                    f"claimed the runbook first); {r.extra_tries} decisions after an approval "
                    "answer still said denied. Those requests count until access was usable."
                )
        sections.append(Section(title, method, [approval.table(approvals)], notes, key="approval"))
    if expiries:
        title, method = split_doc(expiry)
        notes = [
            f"{plan.expiry_waves} waves of {plan.expiry_per_wave} grants; the scheduler's "
            "records and the reader's figures each come from half of the waves, the decisions "
            "from all. With samples this few, p99 is essentially the maximum.",
            "Decisions honour only grants inside [start, end), so the answer turns to denied at "
            "the end even before the scheduler runs; its lag is the HTTP round trip and "
            "the prober's step.",
            "Waves alternate: the scheduler's records come from waves without the store reader, "
            f"the reader's figures from waves with it (it polls every {expiry.POLL_EVERY * 1000:g} "
            "ms, on SQLite with a fresh connection each time as sekisho connects, so they "
            "include up to that much polling delay plus the connection's set-up).",
        ]
        for name, lagged in expiries.items():
            if lagged.late_approvals or lagged.raced:
                notes.append(
                    f"{name}: {lagged.late_approvals} grants were provisioned within 0.2 s of "
                    f"their end; {lagged.raced} approvals answered before provisioning (the "
                    "scheduler ran the runbook)."
                )
        sections.append(
            Section(
                title,
                method,
                [expiry.table(expiries, timers), expiry.peer_table(timers, expiries)],
                notes,
                key="expiry",
            )
        )
    if rates:
        title, method = split_doc(throughput)
        notes = [
            f"Warm-up {plan.warmup_s:g} s, then a {plan.window_s:g} s measuring window per "
            "phase; phases run healthz, /me, workflow for each client count.",
            "A client CPU share near 100% means the load generator (one Python process) was "
            "the limit of that phase, so its peer rate is a lower bound and the ratio an "
            "underestimate; server CPU per operation is unaffected by that.",
        ]
        sections.append(Section(title, method, [throughput.table(rates)], notes, key="throughput"))
    if sweeps:
        title, method = split_doc(sweep)
        mix = ", ".join(f"{k} {share:.0%}" for k, share in sweep.MIX)
        notes = [
            f"Stored mix: {mix} (active ones end 10 min to 8 h ahead), over "
            f"{sweep.HISTORY_USERS:,} people and two work groups; one request per grant. The "
            "timeline and audit history of those grants is not filled in.",
            "The raw UPDATE only flips a status; the sweep also removes each membership and "
            "tag through the provider, writes the timeline and the audit chain, and commits "
            "every step (the 'write transactions per ended grant' column), so the gap between "
            "them is the price of those guarantees, mostly durable commits.",
        ]
        tables = [sweep.table(sweeps), sweep.deadline_table(sweeps)]
        profile_tables = [t for name, r in sweeps.items() for t in sweep.profile_tables(name, r)]
        sections.append(Section(title, method, tables, notes, key="sweep"))
        if profile_tables:
            sections.append(
                Section(
                    "Where a sweep's time goes",
                    f"One extra, untimed sweep of {min(plan.sweep_due, sweep.PROFILE_GRANTS)} due "
                    "grants (with the "
                    "full store) under cProfile. Profiling slows Python code, not the waiting "
                    "on the database and the disk, so the shares are indicative.",
                    profile_tables,
                    key="sweep",
                )
            )
    return sections


if __name__ == "__main__":
    main()
