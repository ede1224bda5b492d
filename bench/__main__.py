"""`python -m bench [--quick] [--only NAME ...] [--output PATH]`: measure, then write RESULTS.md."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx

from bench import (
    approval,
    aws,
    cycle,
    expiry,
    gateway,
    locks,
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
MEASUREMENTS = (*CORE, gateway.KEY, aws.KEY, notify.KEY, login.KEY, cycle.KEY, locks.KEY)
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
    sweep_due=10_000,
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


@dataclass(frozen=True)
class Run:
    """What this run measures, on which databases, in which working directory."""

    args: argparse.Namespace
    plan: Plan
    wanted: list[str]
    backends: list[Backend]
    workdir: Path

    @property
    def core_wanted(self) -> list[str]:
        return [m for m in self.wanted if m in CORE]

    def plan_of(self, module: Any) -> Any:
        """A measurement module's own plan: its QUICK or its FULL."""
        return module.QUICK if self.args.quick else module.FULL

    def need_backends(self) -> list[Backend]:
        if not self.backends:
            raise SystemExit("nothing to measure: --no-sqlite without a PostgreSQL URL")
        return self.backends


@dataclass
class Results:
    """Everything measured, by measurement; empty or None where not measured."""

    approvals: dict[str, approval.ApprovalResult] = field(default_factory=dict)
    expiries: dict[str, expiry.ExpiryResult] = field(default_factory=dict)
    rates: dict[str, throughput.ThroughputResult] = field(default_factory=dict)
    sweeps: dict[str, sweep.SweepResult] = field(default_factory=dict)
    timers: expiry.TimerResult = field(default_factory=expiry.TimerResult)
    gateway_result: gateway.GatewayResult | None = None
    aws_result: aws.AwsResult | None = None
    notify_result: notify.NotifyResult | None = None
    login_result: login.LoginResult | None = None
    cycles: dict[str, cycle.CycleResult] | None = None
    locks_result: locks.LocksResult | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)


def main() -> None:
    args = parse_args()
    run = plan_run(args)
    started_at, load, t_start = machine.now(), machine.load_average(), time.perf_counter()
    print(f"sekisho bench ({'quick' if args.quick else 'full'}), working in {run.workdir}")
    try:
        results = measure(run)
    finally:
        if args.keep:
            print(f"kept {run.workdir}")
        else:
            shutil.rmtree(run.workdir, ignore_errors=True)
    elapsed = time.perf_counter() - t_start
    summary = machine.run_summary(args.quick, started_at, load, elapsed)
    output = args.output or HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    write_results(run, results, summary, output)
    print(f"wrote {output} ({elapsed:.0f} s)")


def plan_run(args: argparse.Namespace) -> Run:
    wanted = [m for m in MEASUREMENTS if m in set(args.only or MEASUREMENTS)]
    backends = [] if args.no_sqlite else [Backend("SQLite")]
    if args.postgres_url:
        backends.append(Backend("PostgreSQL", args.postgres_url))
    if any(m in CORE for m in wanted) and not backends:
        raise SystemExit("nothing to measure: --no-sqlite without a PostgreSQL URL")
    workdir = Path(tempfile.mkdtemp(prefix="sekisho-bench-"))
    return Run(args, QUICK if args.quick else FULL, wanted, backends, workdir)


def measure(run: Run) -> Results:
    results = Results()
    measure_core(run, results)
    measure_gateway_and_aws(run, results)
    measure_in_process(run, results)
    postgres = None  # None: the row stays as the run whose sections are kept wrote it
    if run.core_wanted and run.args.postgres_url:
        postgres = postgres_version(run.args.postgres_url)
    elif set(CORE) <= set(run.wanted):
        postgres = f"not measured ({POSTGRES_ENV} not set)"
    results.facts = machine.facts(run.workdir, postgres)
    return results


def measure_core(run: Run, results: Results) -> None:
    """Sections 1-4: the server over HTTP, then the sweep, on each database."""
    plan, wanted = run.plan, set(run.wanted)
    if "expiry" in wanted:
        results.timers = timed(
            "timer precision (peer)", lambda: expiry.timer_precision(plan.timer_n)
        )
    for backend in run.backends if run.core_wanted else []:
        print(f"{backend.name}:", flush=True)
        data_dir = run.workdir / backend.name.lower()
        if wanted & {"approval", "expiry", "throughput"}:
            server_measurements(backend, data_dir, plan, wanted, results)
        if "sweep" in wanted:
            results.sweeps[backend.name] = timed(
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


def measure_gateway_and_aws(run: Run, results: Results) -> None:
    """Sections 5-10: child processes of their own, no backend choice."""
    if gateway.KEY in run.wanted:
        print("gateway:", flush=True)
        gateway_plan = run.plan_of(gateway)
        results.gateway_result = timed(
            "gateway, all of it",
            lambda: gateway.run(gateway_plan, run.workdir / "gateway", timed),
        )
    if aws.KEY in run.wanted:
        print("aws:", flush=True)
        aws_plan = run.plan_of(aws)
        results.aws_result = timed(
            "aws, all of it", lambda: aws.run(aws_plan, run.workdir / "aws", timed)
        )


def measure_in_process(run: Run, results: Results) -> None:
    """Sections 11-13: notifications, the sign-in flood, the database work per cycle."""
    if notify.KEY in run.wanted:
        backends = run.need_backends()
        print("notify:", flush=True)
        notify_plan = run.plan_of(notify)
        results.notify_result = timed(
            "notify, all of it",
            lambda: notify.run(notify_plan, run.workdir / "notify", backends, timed),
        )
    if login.KEY in run.wanted:
        backends = run.need_backends()
        print("login:", flush=True)
        login_plan = run.plan_of(login)
        results.login_result = timed(
            "sign-in flood, all of it",
            lambda: login.run(login_plan, run.workdir / "login", backends, timed),
        )
    if cycle.KEY in run.wanted:
        backends = run.need_backends()
        print("database work per cycle:", flush=True)
        results.cycles = cycle.run(run.plan_of(cycle), run.workdir / "cycle", backends, timed)
    if locks.KEY in run.wanted:
        backends = run.need_backends()
        print("locks:", flush=True)
        results.locks_result = locks.run(run.plan_of(locks), run.workdir / "locks", backends, timed)


def write_results(run: Run, results: Results, summary: str, output: Path) -> None:
    facts = list(results.facts)
    sections = build_sections(run.plan, results)
    if results.gateway_result is not None:
        facts += results.gateway_result.facts()
        sections += gateway.sections(results.gateway_result)
    if results.aws_result is not None:
        facts += results.aws_result.facts()
        sections += aws.sections(results.aws_result)
    if results.notify_result is not None:
        sections += notify.sections(results.notify_result)
    if results.login_result is not None:
        sections += login.sections(results.login_result)
    if results.cycles is not None:
        sections += cycle.sections(results.cycles, run.plan_of(cycle))
    if results.locks_result is not None:
        sections += locks.sections(results.locks_result)
    report.write(
        output,
        title="sekisho benchmarks: the core's and the gateway's yardsticks",
        preface=PREFACE,
        facts=[*facts, report.run_fact(run.wanted, summary)],
        sections=sections,
        measured=run.wanted,
        order=list(MEASUREMENTS),
        legacy_key=legacy_key,
    )


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
    results: Results,
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
                results.approvals[backend.name] = timed(
                    "approval -> access",
                    lambda: approval.run(server.base_url, people, plan.approval_n),
                )
            if "expiry" in wanted:
                results.expiries[backend.name] = timed(
                    "end-of-grant lag",
                    lambda: expiry.run(
                        server.base_url, url, people, plan.expiry_waves, plan.expiry_per_wave
                    ),
                )
            if "throughput" in wanted:
                rates = timed(
                    "throughput",
                    lambda: throughput.run(
                        server, people, plan.concurrencies, plan.warmup_s, plan.window_s
                    ),
                )
                results.rates[backend.name] = rates
                for line in throughput.describe(backend.name, rates):
                    print(f"  {line}", flush=True)


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
Section 13 counts, in this process, the transactions, statements and access model reads of
one file + approve + release cycle and of sweeps ending due batches of several sizes.
`--only NAME` re-measures some parts and keeps the other sections as they were; the machine
table's `run:` rows say which run measured which sections, and when.
"""


def build_sections(plan: Plan, results: Results) -> list[Section]:
    """Sections 1-4, for the measurements this run made."""
    sections = []
    if results.approvals:
        sections.append(approval_section(results.approvals))
    if results.expiries:
        sections.append(expiry_section(plan, results.expiries, results.timers))
    if results.rates:
        sections.append(throughput_section(plan, results.rates))
    if results.sweeps:
        sections += sweep_sections(plan, results.sweeps)
    return sections


def approval_section(approvals: dict[str, approval.ApprovalResult]) -> Section:
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
    return Section(title, method, [approval.table(approvals)], notes, key="approval")


def expiry_section(
    plan: Plan, expiries: dict[str, expiry.ExpiryResult], timers: expiry.TimerResult
) -> Section:
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
    tables = [expiry.table(expiries, timers), expiry.peer_table(timers, expiries)]
    return Section(title, method, tables, notes, key="expiry")


def throughput_section(plan: Plan, rates: dict[str, throughput.ThroughputResult]) -> Section:
    title, method = split_doc(throughput)
    notes = [
        f"Warm-up {plan.warmup_s:g} s, then a {plan.window_s:g} s measuring window per "
        "phase; phases run healthz, /me, workflow for each client count.",
        "A client CPU share near 100% means the load generator (one Python process) was "
        "the limit of that phase, so its peer rate is a lower bound and the ratio an "
        "underestimate; server CPU per operation is unaffected by that.",
        "The server CPU ratio is the server's CPU time per workflow over its CPU time per "
        "healthz round trip, at the same client count: the figure issue 10's goal is about. "
        "On a shared machine the workflow's CPU grows with the load more than healthz's does, "
        "so compare it between runs at similar load averages (the machine table's run rows).",
    ]
    tables = [throughput.table(rates), throughput.goal_table(rates)]
    return Section(title, method, tables, notes, key="throughput")


def sweep_sections(plan: Plan, sweeps: dict[str, sweep.SweepResult]) -> list[Section]:
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
    sections = [Section(title, method, tables, notes, key="sweep")]
    profile_tables = [t for name, r in sweeps.items() for t in sweep.profile_tables(name, r)]
    if profile_tables:
        sections.append(
            Section(
                "Where a sweep's time goes",
                f"One extra, untimed sweep of {min(plan.sweep_due, sweep.PROFILE_GRANTS)} due "
                "grants (with the full store) under cProfile. Profiling slows Python code, not "
                "the waiting on the database and the disk, so the shares are indicative.",
                profile_tables,
                key="sweep",
            )
        )
    return sections


if __name__ == "__main__":
    main()
