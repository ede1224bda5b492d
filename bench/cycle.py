"""13. The database work of one file + approve + release cycle, and of ending a due batch.

In this process, on a fresh database per backend (the benchmark model, the local provider,
the system clock), SQLAlchemy's own events on the real engines (`before_cursor_execute`,
`begin`, `commit`, `rollback`) count what the services send to the database: transactions
(every one, and those that wrote rows: an INSERT, UPDATE or DELETE), SQL statements (the
BEGIN that opens a SQLite transaction not included), and reads of the access model (statements
`... FROM access_models`). The cycle is what the API runs: `workflow.file` by a member,
`workflow.approve` by a leader (which runs the runbook: add to group + tag through the local
provider) and `grants.release` by the member, each under one model version as the API runs a
request (`OneVersionPerRequest`); one untimed cycle warms up, then each measured
cycle is by another member. The sweep: N due grants (active, past their end, each a member
and tagged in the local provider) ended by one `core.sweeper.run_due()`. Counts do not move
with the machine's noise; their peers are the issue's goals and the count at the issue's start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bench import sweep
from bench.backends import Backend, load_bench_model, open_core
from bench.counting import Counting, Tally
from bench.report import Section, Table
from bench.stats import fmt
from sekisho.bootstrap import Core
from sekisho.domain.actor import Actor
from sekisho.domain.drafts import RequestDraft

KEY = "cycle"
T = TypeVar("T")
Timed = Callable[[str, Callable[[], T]], T]

STEPS = ("file", "approve", "release")
LEADER = Actor("leader01", "127.0.0.1")
INFO = {
    "target": "payment admin console",
    "change": "rotate the merchant API key",
    "rollback": "restore the previous key",
}

# The goals for these counts.
GOAL_CYCLE_WRITES = 6
GOAL_MODEL_READS_PER_OPERATION = 1


@dataclass(frozen=True)
class Baseline:
    """What this section counted at the start of issue 10 (main at 1efa09e): context for the
    runs after the refactor, not a peer of the same run."""

    transactions: int
    writing: int
    statements: int
    model_reads: int
    model_reads_per_operation: int  # the most in one of file, approve, release
    sweep_writes: dict[int, int]  # write transactions of a sweep, by due grants ended

    def cycle(self) -> str:
        return _cycle_text(self.writing, self.transactions, self.statements)

    def reads(self) -> str:
        return _reads_text(self.model_reads, self.model_reads_per_operation)

    def sweeps(self) -> str:
        return _sweeps_text(self.sweep_writes)


AT_START = {
    "SQLite": Baseline(22, 11, 85, 18, 8, {1: 4, 10: 31, 100: 301}),
    "PostgreSQL": Baseline(24, 11, 88, 18, 8, {1: 4, 10: 31, 100: 301}),
}


def _cycle_text(writing: int, transactions: int, statements: int) -> str:
    return f"{writing} write transactions ({transactions} in all), {statements} statements"


def _reads_text(reads: int, per_operation: int) -> str:
    return f"{reads} reads in the cycle, at most {per_operation} in one operation"


def _sweeps_text(writes: dict[int, int]) -> str:
    return ", ".join(f"{w} for {n:,}" for n, w in sorted(writes.items()))


@dataclass(frozen=True)
class CyclePlan:
    cycles: int  # measured cycles, after one to warm up
    batches: tuple[int, ...]  # due grants per sweep


FULL = CyclePlan(cycles=5, batches=(1, 10, 100))
QUICK = CyclePlan(cycles=2, batches=(1, 10))


# -- the measurements ------------------------------------------------------------------------


@dataclass
class CycleResult:
    steps: dict[str, list[Tally]] = field(default_factory=dict)  # by step, one per cycle
    first: Tally | None = None  # the warm-up cycle, caches cold
    sweeps: dict[int, Tally] = field(default_factory=dict)  # by due grants in the sweep

    def step(self, name: str) -> Tally:
        """The median cycle's count of a step (they are all the same unless a cache misses)."""
        tallies = self.steps[name]
        return sorted(tallies, key=lambda t: (t.statements, t.transactions))[len(tallies) // 2]

    def total(self) -> Tally:
        return Tally.sum([self.step(name) for name in STEPS])

    def spread(self) -> dict[str, tuple[int, int]]:
        """Steps whose statement count differed between cycles: (fewest, most)."""
        found = {}
        for name, tallies in self.steps.items():
            counts = [t.statements for t in tallies]
            if min(counts) != max(counts):
                found[name] = (min(counts), max(counts))
        return found


def _draft() -> RequestDraft:
    return RequestDraft(
        template="AddUserToGroup",
        group="ProdMemberWorkGroup",
        reason="benchmark: fix the payment console",
        duration="1h",
        info=INFO,
    )


def _one_cycle(core: Core, counting: Counting, member: Actor) -> dict[str, Tally]:
    counting.take()  # whatever ran before the cycle is not its work
    # Each step under one model version, as the API runs each request (OneVersionPerRequest).
    with core.models.one_version():
        filed = core.workflow.file(member, _draft())
    after_file = counting.take()
    with core.models.one_version():
        approved = core.workflow.approve(LEADER, filed.id, "ok, go ahead")
    after_approve = counting.take()
    if approved.status != "succeeded" or approved.grant is None:
        raise RuntimeError(f"request #{filed.id} is {approved.status} after its approval")
    with core.models.one_version():
        released = core.grants.release(member, approved.grant.id)
    after_release = counting.take()
    if released.status != "revoked":
        raise RuntimeError(f"grant #{approved.grant.id} is {released.status} after release")
    return {"file": after_file, "approve": after_approve, "release": after_release}


def measure_cycles(core: Core, cycles: int) -> CycleResult:
    """A warm-up cycle (it parses the model and fills caches), then `cycles` measured ones."""
    result = CycleResult(steps={name: [] for name in STEPS})
    members = [Actor(f"member{i:02d}", "127.0.0.1") for i in range(1, cycles + 2)]
    with Counting(core.db) as counting:
        result.first = Tally.sum(list(_one_cycle(core, counting, members[0]).values()))
        for member in members[1:]:
            for name, tally in _one_cycle(core, counting, member).items():
                result.steps[name].append(tally)
    return result


def measure_sweeps(core: Core, batches: tuple[int, ...]) -> dict[int, Tally]:
    """One sweep per batch size, each ending that many due grants and nothing else."""
    batch, _ = sweep.populate(core, 0, max(batches))
    core.sweeper.run_due()  # warm-up: ends them all, untallied
    found = {}
    with Counting(core.db) as counting:
        for size in batches:
            sweep.restore_due(core, batch, size)
            counting.take()
            report = core.sweeper.run_due()
            found[size] = counting.take()
            if len(report.expired) != size or report.still_failing:
                raise RuntimeError(f"the sweep ended {len(report.expired)} of {size} grants")
    return found


def run(
    plan: CyclePlan, workdir: Path, backends: list[Backend], timed: Timed[Any]
) -> dict[str, CycleResult]:
    results = {}
    for backend in backends:
        print(f"{backend.name}:", flush=True)
        data_dir = workdir / backend.name.lower()
        result = timed(
            "file + approve + release",
            partial(_on_fresh_core, backend, data_dir, "cycle", _cycles(plan.cycles)),
        )
        result.sweeps = timed(
            "due batches",
            partial(_on_fresh_core, backend, data_dir, "cycle_sweep", _sweeps(plan.batches)),
        )
        _print(backend.name, result)
        results[backend.name] = result
    return results


def _cycles(cycles: int) -> Callable[[Core], CycleResult]:
    def work(core: Core) -> CycleResult:
        load_bench_model(core)
        return measure_cycles(core, cycles)

    return work


def _sweeps(batches: tuple[int, ...]) -> Callable[[Core], dict[int, Tally]]:
    return lambda core: measure_sweeps(core, batches)


def _on_fresh_core(backend: Backend, data_dir: Path, label: str, work: Callable[[Core], T]) -> T:
    with backend.database(data_dir, label) as url:
        core = open_core(url, data_dir)
        try:
            return work(core)
        finally:
            core.db.dispose()


def _print(name: str, result: CycleResult) -> None:
    total = result.total()
    print(f"  {name}: file + approve + release: {total.line()}", flush=True)
    for size, tally in result.sweeps.items():
        print(f"  {name}: a sweep ending {_grants(size)}: {tally.line()}", flush=True)


# -- the section -----------------------------------------------------------------------------


def _grants(n: int) -> str:
    return f"{n:,} due grant{'' if n == 1 else 's'}"


def _kinds(tally: Tally) -> str:
    order = ("SELECT", "INSERT", "UPDATE", "DELETE")
    shown = [str(tally.by_kind.get(kind, 0)) for kind in order]
    others = sum(n for kind, n in tally.by_kind.items() if kind not in order)
    return " / ".join(shown) + (f" (+{others} other)" if others else "")


def cycle_table(results: dict[str, CycleResult]) -> Table:
    t = Table(
        [
            "database",
            "step",
            "transactions",
            "write transactions (wrote rows)",
            "SQL statements",
            "of them SELECT / INSERT / UPDATE / DELETE",
            "access model reads (`FROM access_models`)",
        ]
    )
    for name, r in results.items():
        rows = [(step, r.step(step)) for step in STEPS]
        rows.append(("the whole cycle", r.total()))
        if r.first is not None:
            rows.append(("the whole first cycle (caches cold; not in the medians)", r.first))
        for step, tally in rows:
            t.add(
                name,
                step,
                str(tally.transactions),
                str(tally.writing),
                str(tally.statements),
                _kinds(tally),
                str(tally.model_reads),
            )
    return t


def sweep_table(results: dict[str, CycleResult]) -> Table:
    t = Table(
        [
            "database",
            "due grants ended by one `run_due()`",
            "transactions",
            "write transactions",
            "write transactions per ended grant",
            "SQL statements",
            "access model reads",
            "write transactions : the 1-grant sweep's",
        ]
    )
    for name, r in results.items():
        smallest = r.sweeps[min(r.sweeps)].writing
        for size, tally in r.sweeps.items():
            t.add(
                name,
                f"{size:,}",
                str(tally.transactions),
                str(tally.writing),
                fmt(tally.writing / size),
                str(tally.statements),
                str(tally.model_reads),
                f"{fmt(tally.writing / smallest)}x" if smallest else "n/a",
            )
    return t


def goal_table(results: dict[str, CycleResult]) -> Table:
    t = Table(["goal (issue 10)", "database", "measured", "at the issue's start", "met"])
    for name, r in results.items():
        total = r.total()
        per_operation = max(r.step(step).model_reads for step in STEPS)
        writes = {size: tally.writing for size, tally in r.sweeps.items()}
        start = AT_START.get(name)
        t.add(
            f"file + approve + release: at most {GOAL_CYCLE_WRITES} write transactions",
            name,
            _cycle_text(total.writing, total.transactions, total.statements),
            start.cycle() if start else "-",
            _yes(total.writing <= GOAL_CYCLE_WRITES),
        )
        t.add(
            "the model read once per operation (cached by version)",
            name,
            _reads_text(total.model_reads, per_operation),
            start.reads() if start else "-",
            _yes(per_operation <= GOAL_MODEL_READS_PER_OPERATION),
        )
        t.add(
            "ending a due batch: a constant number of write transactions per batch",
            name,
            _sweeps_text(writes),
            start.sweeps() if start else "-",
            _yes(len(set(writes.values())) == 1),
        )
    return t


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


def sections(results: dict[str, CycleResult], plan: CyclePlan) -> list[Section]:
    title, _, method = (__doc__ or "").strip().partition("\n")
    notes = [
        "Write transactions are the transactions that wrote rows. Reads run in transactions of "
        "their own (on SQLite, on the reader engine beside the writer), so the transactions "
        "column counts both; on PostgreSQL it also counts the advisory lock's connection, "
        "held around a membership change. The issue's '22 write transactions' at its start "
        "are the cycle's transactions in all on SQLite; the goal is judged on those that "
        "write.",
        f"The step counts are the median cycle's of {plan.cycles}; the sweeps end "
        f"{', '.join(f'{n:,}' for n in plan.batches)} due grants, one after another, in one "
        "database (the batch restored between them, uncounted).",
    ]
    for name, r in results.items():
        total = r.total()
        if total.immediate and total.immediate != total.writing:
            notes.append(
                f"{name}: {total.immediate} of the cycle's transactions took SQLite's write "
                f"lock (BEGIN IMMEDIATE, `db.write()`), {total.writing} of them wrote rows."
            )
        for step, (low, high) in r.spread().items():
            notes.append(f"{name}: {step} ran {low} to {high} statements across the cycles.")
    tables = [cycle_table(results), sweep_table(results), goal_table(results)]
    return [Section(title.strip().rstrip("."), method.strip(), tables, notes, key=KEY)]
