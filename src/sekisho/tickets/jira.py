"""Jira as the ticket system: `GET /rest/api/2/issue/{key}?fields=status` with sekisho's
token (Jira Cloud: basic auth as an account's e-mail with an API token; Jira Data Center: a
personal access token as a bearer), through sekisho's one HTTP client (httpx: TLS verified,
no redirects followed). Atlassian publishes no Python client of its own; the REST answer is
read as its documentation shows it (`fields.status.name`, `fields.status.statusCategory.key`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote

import httpx

from sekisho.domain.access import JiraSettings
from sekisho.domain.tickets import IssueState, TicketsUnavailable
from sekisho.notify.base import USER_AGENT

TIMEOUT_S = 10.0


class JiraTickets:
    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._environ, self._transport = environ, transport

    def state(self, settings: JiraSettings, key: str) -> IssueState | None:
        url = f"{settings.url.rstrip('/')}/rest/api/2/issue/{quote(key, safe='')}"
        try:
            with self._client(settings) as client:
                answer = client.get(url, params={"fields": "status"})
        except httpx.HTTPError:
            raise TicketsUnavailable("Jira cannot be reached") from None
        if answer.status_code == 404:
            return None
        if answer.status_code in (401, 403):
            raise TicketsUnavailable(
                f"Jira refused sekisho's credentials (HTTP {answer.status_code})"
            )
        if answer.status_code != 200:
            raise TicketsUnavailable(f"Jira answered HTTP {answer.status_code}")
        return _state_of(key, answer)

    def _client(self, settings: JiraSettings) -> httpx.Client:
        env = os.environ if self._environ is None else self._environ
        token = env.get(settings.token_env, "")
        if not token:
            raise TicketsUnavailable(f"environment variable {settings.token_env} is not set")
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        auth: httpx.Auth | None = None
        if settings.user_env:
            auth = httpx.BasicAuth(env.get(settings.user_env, ""), token)
        else:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(
            timeout=TIMEOUT_S,
            headers=headers,
            auth=auth,
            follow_redirects=False,
            transport=self._transport,
        )


def _state_of(key: str, answer: httpx.Response) -> IssueState:
    try:
        status = answer.json()["fields"]["status"]
        name, category = str(status["name"])[:80], str(status["statusCategory"]["key"])
    except (ValueError, KeyError, TypeError):
        raise TicketsUnavailable("Jira's answer has no status for the issue") from None
    return IssueState(key, name, category == "done")
