"""Slack talking to sekisho: the buttons on approval requests, the reject modal, and the
`/sekisho request` slash command (`core.slack`).

Every request is checked first: Slack's signature over its timestamp and body with the app's
signing secret, within five minutes (slack-sdk's `SignatureVerifier`, on sekisho's clock), and
never the same signed request twice. The Slack user is then the model's user with that
`slack_id`, or with the e-mail Slack has for them (users.info). What they asked for is the
same use case the API runs, as that person (source `slack:USER_ID`): no self-approval, levels,
locks and step-up hold exactly as there. A refusal says why in Slack (an ephemeral message or
the modal's error) and is audited (`slack.refused`); it changes nothing.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel, Channel, ChannelType
from sekisho.domain.actor import Actor
from sekisho.domain.drafts import RequestDraft
from sekisho.domain.errors import SekishoError
from sekisho.notify.render import slack_escape
from sekisho.notify.slack_app import APPROVE, DEFAULT_API, REJECT
from sekisho.operations.slack_requests import AdmitSlackRequest, RefuseSlackRequest
from sekisho.ports import ModelSource
from sekisho.services.workflow import WorkflowService

REJECT_VIEW = "sekisho_reject"  # the modal's callback_id
REASON = "reason"  # its input's block_id and action_id
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """What sekisho answers Slack: a status, and a JSON body (or none)."""

    status: int
    body: dict[str, Any] | None = None


class SlackRefusal(Exception):
    """What Slack sent asks for nothing sekisho can do; `why` is told back in Slack."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _OnOurClock(SlackClock):
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now().timestamp()


@dataclass(frozen=True)
class _App:
    channel: Channel
    client: WebClient


class SlackInteractions:
    def __init__(
        self,
        models: ModelSource,
        clock: Clock,
        workflow: WorkflowService,
        admit: AdmitSlackRequest,
        refuse: RefuseSlackRequest,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._models, self._clock, self._workflow = models, clock, workflow
        self._admit, self._refuse = admit, refuse
        self._environ = environ

    # -- the two endpoints ----------------------------------------------------------------

    def interaction(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """A button pressed or a modal submitted (Slack's interactivity request URL)."""
        app = self._gate(body, headers)
        if isinstance(app, Answer):
            return app
        try:
            payload = json.loads(_form(body)["payload"])
            kind = payload["type"]
        except (KeyError, ValueError, TypeError):
            return Answer(400, {"error": "no interaction payload"})
        if kind == "block_actions":
            self._pressed(app, payload)
            return Answer(200)
        if kind == "view_submission" and payload.get("view", {}).get("callback_id") == REJECT_VIEW:
            return Answer(200, self._submitted(app, payload))
        return Answer(200)

    def command(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """`/sekisho request TEMPLATE GROUP DURATION REASON [section=text ...]`."""
        app = self._gate(body, headers)
        if isinstance(app, Answer):
            return app
        form = _form(body)
        slack_user = form.get("user_id", "")
        try:
            user = self._person(app, slack_user)
            request_id = self._file(user, slack_user, form.get("text", ""))
        except (SlackRefusal, SekishoError) as exc:
            why = _refusal(exc)
            self._refuse.execute(slack_user or None, None, "/sekisho request", why)
            return Answer(200, _ephemeral(f"Not filed: {why}"))
        return Answer(200, _ephemeral(f"Request #{request_id} filed; its approvers are asked."))

    # -- checks -----------------------------------------------------------------------------

    def _gate(self, body: bytes, headers: Mapping[str, str]) -> _App | Answer:
        """The app whose signing secret signed this request, once; else the answer: 404 with
        no app set up (nothing audited: nobody can fill the trail through an unused door),
        401 (audited) when no app signed it, or it came before."""
        apps = self._apps()
        if not apps:
            return Answer(404, {"error": "no Slack app is set up here"})
        signed = None
        if len(body) <= MAX_BODY:
            signed = next((app for app in apps if self._signed(app, body, headers)), None)
        if signed is None:
            self._refuse.execute(None, None, "a request", "the Slack signature is missing or wrong")
        elif not self._admit.execute(_header(headers, "x-slack-signature")):
            self._refuse.execute(None, None, "a request", "the same signed request came twice")
        else:
            return signed
        return Answer(401, {"error": "not a request Slack signed for this app"})

    def _signed(self, app: _App, body: bytes, headers: Mapping[str, str]) -> bool:
        secret = self._env(app.channel.signing_secret_env)
        if not secret:
            return False
        verifier = SignatureVerifier(secret, clock=_OnOurClock(self._clock))
        return verifier.is_valid_request(body, dict(headers))

    def _apps(self) -> list[_App]:
        model: AccessModel = self._models.model()
        channels = [c for c in model.notifications.channels if c.type is ChannelType.SLACK_APP]
        apps = []
        for channel in channels:
            token = self._env(channel.bot_token_env)
            base = channel.endpoint_url or DEFAULT_API
            apps.append(_App(channel, WebClient(token=token or None, base_url=base, timeout=10)))
        return apps

    def _env(self, name: str | None) -> str | None:
        env = os.environ if self._environ is None else self._environ
        return env.get(name) if name else None

    def _person(self, app: _App, slack_user: str) -> str:
        """The model's user this Slack account is, or SlackRefusal saying so."""
        model = self._models.model()
        user = model.user_of_slack(slack_user, None) if slack_user else None
        if user is None and slack_user:
            user = model.user_of_slack(slack_user, _email_of(app.client, slack_user))
        if user is None:
            raise SlackRefusal(
                "your Slack account is not a sekisho user (ask an admin to add your slack_id or "
                "your Slack e-mail to the model)"
            )
        return user.name

    # -- what people do ---------------------------------------------------------------------

    def _pressed(self, app: _App, payload: dict[str, Any]) -> None:
        action = (payload.get("actions") or [{}])[0]
        slack_user = str(payload.get("user", {}).get("id", ""))
        what = f"{str(action.get('action_id', ''))[:40]} #{str(action.get('value', ''))[:20]}"
        user: str | None = None
        try:
            request_id = _request_id(action.get("value"))
            user = self._person(app, slack_user)
            actor = Actor(user, f"slack:{slack_user}")
            if action.get("action_id") == APPROVE:
                self._workflow.approve(actor, request_id, "")
            elif action.get("action_id") == REJECT:
                app.client.views_open(
                    trigger_id=payload["trigger_id"], view=reject_modal(request_id)
                )
        except (SlackRefusal, SekishoError) as exc:
            why = _refusal(exc)
            self._refuse.execute(slack_user or None, user, what, why)
            self._tell(app, payload, slack_user, f"Nothing done: {why}")

    def _submitted(self, app: _App, payload: dict[str, Any]) -> dict[str, Any]:
        view, slack_user = payload["view"], str(payload.get("user", {}).get("id", ""))
        user: str | None = None
        try:
            request_id = _request_id(view.get("private_metadata"))
            reason = _typed_reason(view)
            user = self._person(app, slack_user)
            self._workflow.reject(Actor(user, f"slack:{slack_user}"), request_id, reason)
        except (SlackRefusal, SekishoError) as exc:
            why = _refusal(exc)
            self._refuse.execute(slack_user or None, user, "reject", why)
            return {"response_action": "errors", "errors": {REASON: why[:150]}}
        return {"response_action": "clear"}

    def _file(self, user: str, slack_user: str, text: str) -> int:
        draft = read_command(text)
        model = self._models.model()
        template = model.template(draft.template)
        sections = {c.name for c in template.change_info} if template else set()
        info = {k: v for k, v in draft.info.items() if k in sections}
        params = {k: v for k, v in draft.info.items() if k not in sections}
        typed = RequestDraft(
            template=draft.template,
            group=draft.group,
            reason=draft.reason,
            duration=draft.duration,
            info=info,
            params=params,
        )
        return self._workflow.file(Actor(user, f"slack:{slack_user}"), typed).id

    def _tell(self, app: _App, payload: dict[str, Any], slack_user: str, text: str) -> None:
        channel = str(payload.get("channel", {}).get("id") or app.channel.slack_channel or "")
        try:
            app.client.chat_postEphemeral(channel=channel, user=slack_user, text=slack_escape(text))
        except SlackApiError:
            return  # the refusal is audited; Slack not hearing of it changes nothing


def reject_modal(request_id: int) -> dict[str, Any]:
    """The modal a Reject press opens: the reason is required, as in the web UI."""
    return {
        "type": "modal",
        "callback_id": REJECT_VIEW,
        "private_metadata": str(request_id),
        "title": {"type": "plain_text", "text": f"Reject request #{request_id}"[:24]},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": REASON,
                "label": {"type": "plain_text", "text": "Why reject it?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON,
                    "multiline": True,
                    "max_length": 2000,
                },
            }
        ],
    }


def read_command(text: str) -> RequestDraft:
    """`request TEMPLATE GROUP DURATION REASON... [name=text ...]` as a draft (name=text goes
    to the template's change sections or parameters); SlackRefusal saying the usage."""
    usage = "usage: /sekisho request TEMPLATE GROUP DURATION REASON [section=text ...]"
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise SlackRefusal(f"{exc}; {usage}") from None
    if len(words) < 5 or words[0] != "request":
        raise SlackRefusal(usage)
    named = dict(w.split("=", 1) for w in words[4:] if "=" in w)
    reason = " ".join(w for w in words[4:] if "=" not in w)
    return RequestDraft(
        template=words[1], group=words[2], duration=words[3], reason=reason, info=named
    )


def _typed_reason(view: dict[str, Any]) -> str:
    try:
        value = view["state"]["values"][REASON][REASON]["value"]
    except (KeyError, TypeError):
        raise SlackRefusal("say why you reject the request") from None
    return value if isinstance(value, str) else ""


def _email_of(client: WebClient, slack_user: str) -> str | None:
    try:
        found = client.users_info(user=slack_user)
    except SlackApiError:
        return None
    data: dict[str, Any] = found.data if isinstance(found.data, dict) else {}
    email = data.get("user", {}).get("profile", {}).get("email")
    return email if isinstance(email, str) else None


def _request_id(value: object) -> int:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
        raise SlackRefusal("this button names no request")
    return int(value)


def _refusal(exc: SlackRefusal | SekishoError) -> str:
    return exc.message if isinstance(exc, SekishoError) else exc.why


def _ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": slack_escape(text)}


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items() if v}


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")
