"""The secret key file (TOTP seeds, sealed secrets): made on first use, private, and one key
for processes that start at once on one data directory (`serve --only api` beside
`serve --only gateway`): none of them may read it half-written or fail because another made
it first."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sekisho.services.secretbox import ENV_KEY, SecretBox

STARTERS = 8


def test_processes_starting_at_once_share_one_whole_private_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    path = tmp_path / "data" / "secret.key"
    together = threading.Barrier(STARTERS)
    boxes: list[SecretBox] = []
    errors: list[Exception] = []

    def start() -> None:
        together.wait()
        try:
            boxes.append(SecretBox.from_environment(path))
        except Exception as exc:  # the test reports whatever a starter hit
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(STARTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sealed = boxes[0].seal("a TOTP seed")
    assert [box.open(sealed) for box in boxes] == ["a TOTP seed"] * STARTERS
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary left


def test_a_key_file_made_earlier_is_used_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    path = tmp_path / "secret.key"
    sealed = SecretBox.from_environment(path).seal("kept")
    assert SecretBox.from_environment(path).open(sealed) == "kept"
