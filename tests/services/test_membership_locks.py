"""Membership locks across nodes (PostgreSQL advisory locks): a batch holds every pair it
changes against every other node, and batches that share pairs never deadlock."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import pytest

from sekisho.services.membership_locks import DatabaseLocks
from sekisho.store.db import Database

pytestmark = pytest.mark.postgres

PAIRS = [(f"member{i:02d}", "ProdMemberWorkGroup") for i in range(20)]


@pytest.fixture
def nodes(postgres_database: str) -> Iterator[tuple[DatabaseLocks, DatabaseLocks]]:
    """Two nodes' locks: each its own engine, as two sekisho processes would have."""
    one, two = Database(postgres_database), Database(postgres_database)
    yield DatabaseLocks(one), DatabaseLocks(two)
    one.dispose()
    two.dispose()


def test_a_batch_holds_each_of_its_pairs_against_another_node(
    nodes: tuple[DatabaseLocks, DatabaseLocks],
) -> None:
    first, second = nodes
    taken = threading.Event()

    def take_one() -> None:
        with second.hold(*PAIRS[7]):
            taken.set()

    with first.hold_all(PAIRS[:10]):
        other = threading.Thread(target=take_one)
        other.start()
        assert not taken.wait(0.5), "the other node changed a pair the batch holds"
    assert taken.wait(10), "the other node never got the pair once the batch let go"
    other.join()


def test_batches_sharing_pairs_in_any_order_never_deadlock(
    nodes: tuple[DatabaseLocks, DatabaseLocks],
) -> None:
    rounds, done = 25, []

    def batches(locks: DatabaseLocks, seed: int) -> None:
        shuffle = random.Random(seed)
        for _ in range(rounds):
            pairs = shuffle.sample(PAIRS, k=12)
            with locks.hold_all(pairs):
                pass
        done.append(seed)

    workers = [threading.Thread(target=batches, args=(n, i)) for i, n in enumerate(nodes * 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sorted(done) == [0, 1, 2, 3]
