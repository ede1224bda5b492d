"""A stand-in for Jira's REST API, for contract tests: `GET /rest/api/2/issue/{key}` answered
as Atlassian documents it (the "Get issue" example response, trimmed to `key` and
`fields.status`; a missing issue's 404 with `errorMessages`; 401 without the right
credentials). Atlassian publishes no Python client: sekisho calls it with httpx, as here."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from standin_server import JsonHandler, serving

CATEGORIES = {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}
NOT_FOUND = {
    "errorMessages": ["Issue does not exist or you do not have permission to see it."],
    "errors": {},
}


def issue_body(base: str, key: str, status: str) -> dict[str, object]:
    """Jira's documented answer for one issue, with the status asked for."""
    category = CATEGORIES[status]
    return {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog",
        "id": "10002",
        "self": f"{base}/rest/api/2/issue/10002",
        "key": key,
        "fields": {
            "status": {
                "self": f"{base}/rest/api/2/status/3",
                "description": "",
                "iconUrl": f"{base}/images/icons/statuses/inprogress.png",
                "name": status,
                "id": "3",
                "statusCategory": {
                    "self": f"{base}/rest/api/2/statuscategory/4",
                    "id": 4,
                    "key": category,
                    "colorName": "yellow",
                    "name": status,
                },
            }
        },
    }


@dataclass
class JiraStandIn:
    authorization: str  # the Authorization header it accepts
    issues: dict[str, str] = field(default_factory=dict)  # key -> status name
    asked: list[str] = field(default_factory=list)
    url: str = ""


def _handler(jira: JiraStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            key = unquote(path.removeprefix("/rest/api/2/issue/"))
            jira.asked.append(key)
            if self.headers.get("Authorization") != jira.authorization:
                self._send(401, {"errorMessages": ["You are not authenticated."], "errors": {}})
            elif key in jira.issues:
                self._send(200, issue_body(jira.url, key, jira.issues[key]))
            else:
                self._send(404, NOT_FOUND)

        def _send(self, status: int, body: dict[str, object]) -> None:
            self.send_json(status, body, "application/json;charset=UTF-8")

    return Handler


def basic(user: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


@contextmanager
def running_jira(authorization: str, issues: dict[str, str]) -> Iterator[JiraStandIn]:
    jira = JiraStandIn(authorization, dict(issues))
    with serving(_handler(jira)) as server:
        jira.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield jira
