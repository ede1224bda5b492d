"""Each audit entry's node, where auditors read the trail: the web page, its exports, the API."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from web_support import Codes

from sekisho.bootstrap import Core
from sekisho.store.db import Database
from support import MEMBER, draft

SignIn = Callable[[str], TestClient]


@pytest.fixture
def two_nodes(core: Core, db_url: str) -> tuple[int, int]:
    """node-b files a request that node-a's core (the one serving the pages) cancels."""
    node_b = replace(
        core,
        db=Database(db_url),
        settings=core.settings.model_copy(update={"node_name": "node-b"}),
    )
    try:
        request_id = node_b.workflow.file(MEMBER, draft()).id
    finally:
        node_b.db.dispose()
    core.workflow.cancel(MEMBER, request_id)
    return request_id, 2


def test_the_audit_page_and_exports_show_each_entrys_node(
    sign_in: SignIn, core: Core, codes: Codes, two_nodes: tuple[int, int]
) -> None:
    request_id, _ = two_nodes
    here = core.settings.node_name
    auditor = sign_in("auditor01")
    page = auditor.get("/audit", params={"request": str(request_id)})
    assert page.status_code == 200
    assert '<th scope="col">Node</th>' in page.text
    assert "<td>node-b</td>" in page.text
    assert f"<td>{here}</td>" in page.text

    exported = auditor.get("/audit/export.csv", params={"request": str(request_id)})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["action"], r["node"]) for r in rows] == [
        ("request.cancelled", here),
        ("request.filed", "node-b"),
    ]
    lines = auditor.get("/audit/export.jsonl", params={"request": str(request_id)}).text
    assert [json.loads(line)["node"] for line in lines.splitlines()] == [here, "node-b"]

    login = {"user": "auditor01", "password": codes.password("auditor01")}
    token = auditor.post(
        "/api/v1/auth/login", json=login | {"otp": codes.next_code("auditor01")}
    ).json()["token"]
    api = auditor.get(
        "/api/v1/audit",
        params={"request": request_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert [e["node"] for e in api.json()] == [here, "node-b"]
