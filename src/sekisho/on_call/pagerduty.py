"""PagerDuty's REST API v2 through PagerDuty's own client (`pagerduty`, formerly pdpyras):
`GET /oncalls?schedule_ids[]=S&since=now&until=now&include[]=users`, each entry's user e-mail,
escalation level and shift. A key that PagerDuty refuses, or PagerDuty unreachable, is
OnCallUnavailable: the level then waits for a person, never passes by failure."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pagerduty

from sekisho.domain.access import PagerDutySettings
from sekisho.domain.on_call import OnCallEntry, OnCallUnavailable
from sekisho.domain.timespec import iso
from sekisho.notify.base import DeliveryFailed, tls_context

MAX_ENTRIES = 500


class PagerDutyOnCall:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def entries(
        self, settings: PagerDutySettings, schedule: str, at: datetime
    ) -> list[OnCallEntry]:
        env = os.environ if self._environ is None else self._environ
        token = env.get(settings.token_env)
        if not token:
            raise OnCallUnavailable(f"environment variable {settings.token_env} is not set")
        try:
            verify = tls_context(settings.ca_file)
        except DeliveryFailed as exc:
            raise OnCallUnavailable(str(exc)) from None
        client = pagerduty.RestApiV2Client(token, base_url=settings.api_url, verify=verify)
        # Asked while a request is filed or decided: one try, no backoff sleeps (a 429 too).
        client.timeout = 10
        client.max_network_attempts = 0
        client.retry = {429: 0}
        params = {
            "schedule_ids[]": [schedule],
            "since": iso(at),
            "until": iso(at),
            "include[]": ["users"],
            "time_zone": "UTC",
        }
        try:
            found = [_entry(e) for e in client.iter_all("oncalls", params=params)]
        except pagerduty.HttpError as exc:
            code = exc.response.status_code if exc.response is not None else "error"
            raise OnCallUnavailable(f"PagerDuty answered HTTP {code}") from None
        except (pagerduty.Error, OSError, KeyError, TypeError, ValueError):
            raise OnCallUnavailable("PagerDuty cannot be reached or sent no schedule") from None
        return found[:MAX_ENTRIES]


def _entry(entry: dict[str, Any]) -> OnCallEntry:
    return OnCallEntry(
        email=str(entry["user"].get("email") or ""),
        escalation_level=int(entry.get("escalation_level") or 0),
        start=_time(entry.get("start")),
        end=_time(entry.get("end")),
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
