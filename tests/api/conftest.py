from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sekisho.bootstrap import Core
from sekisho.server import create_app
from support import People


@pytest.fixture
def people(core: Core) -> People:
    return People(core)


@pytest.fixture
def api(core: Core) -> Iterator[TestClient]:
    with TestClient(create_app(core), raise_server_exceptions=False) as client:
        yield client
