"""A stand-in for Slack, for contract tests: its Web API on 127.0.0.1 (what sekisho's bot calls
through slack-sdk) and Slack's side of interactivity (payloads signed as Slack signs them).

No real Slack runs offline, so this speaks Slack's wire format as Slack documents it:
- Web API methods at `/api/METHOD`, form-encoded or JSON bodies, `Authorization: Bearer
  xoxb-...`, answers `{"ok": true, ...}` shaped as the method's documented example response
  (`EXAMPLES`), or `{"ok": false, "error": "invalid_auth"}` for another token;
- interaction payloads as Slack posts them: `payload=<JSON>` form-encoded, with
  `X-Slack-Request-Timestamp` and `X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:ts:body")`
  (https://docs.slack.dev/authentication/verifying-requests-from-slack/).
tests/notify/test_slack_contract.py checks both against Slack's published examples.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode

from standin_server import JsonHandler, serving

# The documented example responses (api.slack.com/methods/METHOD, "Example response"), trimmed
# to the fields sekisho reads; the stand-in fills in the request's own channel and ts.
EXAMPLES: dict[str, dict[str, Any]] = {
    "chat.postMessage": {
        "ok": True,
        "channel": "C123ABC456",
        "ts": "1503435956.000247",
        "message": {"text": "Here's a message for you", "type": "message", "bot_id": "B123ABC456"},
    },
    "chat.update": {"ok": True, "channel": "C123ABC456", "ts": "1401383885.000061", "text": ""},
    "chat.postEphemeral": {"ok": True, "message_ts": "1502210682.580145"},
    "views.open": {"ok": True, "view": {"id": "VMHU10V25", "type": "modal"}},
    "users.info": {
        "ok": True,
        "user": {"id": "W012A3CDE", "name": "spengler", "profile": {"email": ""}},
    },
    "users.lookupByEmail": {"ok": True, "user": {"id": "W012A3CDE", "name": "spengler"}},
}


@dataclass
class Call:
    method: str
    args: dict[str, Any]


@dataclass
class SlackStandIn:
    token: str
    people: dict[str, str] = field(default_factory=dict)  # Slack user ID -> e-mail
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    _ts: int = 0

    def called(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    def answer(self, method: str, args: dict[str, Any], token: str) -> dict[str, Any]:
        if token != self.token:
            return {"ok": False, "error": "invalid_auth"}
        self.calls.append(Call(method, args))
        reply = json.loads(json.dumps(EXAMPLES.get(method, {"ok": True})))
        if method == "chat.postMessage":
            self._ts += 1
            reply |= {"channel": args.get("channel"), "ts": f"1700000000.{self._ts:06d}"}
        elif method == "chat.update":
            reply |= {"channel": args.get("channel"), "ts": args.get("ts")}
        elif method == "users.info":
            user = str(args.get("user"))
            if user not in self.people:
                return {"ok": False, "error": "user_not_found"}
            reply["user"] = {"id": user, "name": user, "profile": {"email": self.people[user]}}
        elif method == "users.lookupByEmail":
            wanted = str(args.get("email")).casefold()  # Slack matches e-mail in any case
            found = [u for u, e in self.people.items() if e.casefold() == wanted]
            if not found:
                return {"ok": False, "error": "users_not_found"}
            reply["user"] = {"id": found[0], "name": found[0]}
        return reply


def _handler(standin: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            method = self.path.removeprefix("/api/")
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if "json" in (self.headers.get("Content-Type") or ""):
                args = json.loads(raw or "{}")
            else:
                args = {k: v[0] for k, v in parse_qs(raw).items()}
            for key in ("blocks", "view"):  # form bodies carry these as JSON text
                if isinstance(args.get(key), str):
                    args[key] = json.loads(args[key])
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            answer = standin.answer(method, args, token)
            self.send_json(200, answer, "application/json; charset=utf-8")

    return Handler


@contextmanager
def running_slack(token: str, people: dict[str, str]) -> Iterator[SlackStandIn]:
    standin = SlackStandIn(token, dict(people))
    with serving(_handler(standin)) as server:
        standin.url = f"http://127.0.0.1:{server.server_address[1]}/api/"
        yield standin


def signed(secret: str, body: str, timestamp: int) -> dict[str, str]:
    """The headers Slack sends with `body`: its timestamp and v0 signature."""
    base = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
    }


def button_press(user: str, action_id: str, value: str, channel: str, ts: str) -> str:
    """A block_actions payload as Slack posts it (the documented example's shape)."""
    payload = {
        "type": "block_actions",
        "team": {"id": "T9TK3CUKW", "domain": "example"},
        "user": {"id": user, "username": user, "team_id": "T9TK3CUKW"},
        "api_app_id": "AABA1ABCD",
        "token": "9s8d9as89d8as9d8as989",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "channel": {"id": channel, "name": "prod-approvals"},
        "message": {"type": "message", "ts": ts, "text": "..."},
        "response_url": "https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "approve-block",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": value,
                "type": "button",
                "action_ts": "1548426417.840180",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


def reject_submission(user: str, request_id: str, reason: str) -> str:
    """A view_submission payload for the reject modal, as Slack posts it."""
    payload = {
        "type": "view_submission",
        "team": {"id": "T9TK3CUKW", "domain": "example"},
        "user": {"id": user, "username": user, "team_id": "T9TK3CUKW"},
        "api_app_id": "AABA1ABCD",
        "view": {
            "id": "VMHU10V25",
            "type": "modal",
            "callback_id": "sekisho_reject",
            "private_metadata": request_id,
            "state": {
                "values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}
            },
        },
    }
    return urlencode({"payload": json.dumps(payload)})
