"""A Slack app's bot as a channel: approvers get Approve and Reject buttons in the message that
asks them, and once the request is settled every such message is updated in place and the
requester hears of it in a direct message.

The bot calls Slack's Web API through `slack-sdk` (chat.postMessage, chat.update,
users.lookupByEmail). The token comes from an environment variable and never appears in an
error. A posted message's receipt is `slack CHANNEL TS`: what chat.update needs later, kept in
the outbox row. The buttons carry only the action and the request's number; what a press does
is decided by sekisho when Slack tells it (`chat/interactions.py`), by the same rules as the
API. A template whose approvals need a step-up or that says `chat_approval: false` gets only a
link to the request's page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sekisho.domain.access import NotifyEvent
from sekisho.notify.base import Delivery, DeliveryFailed
from sekisho.notify.message import Message
from sekisho.notify.render import slack_payload

SETTLED = "approval.settled"  # the outbox's word to update the approvers' messages in place
APPROVE, REJECT = "sekisho_approve", "sekisho_reject"  # the buttons' action_id
DEFAULT_API = "https://slack.com/api/"

Receipts = Callable[[str, int], list[str]]  # (channel name, request id) -> receipts posted


def with_decision_buttons(message: Message) -> dict[str, Any]:
    """The message's blocks; an approval request that chat may decide gets Approve and
    Reject before its link."""
    payload = slack_payload(message)
    chat = message.data.get("chat_approval") is True and message.request_id is not None
    if message.event != NotifyEvent.APPROVAL_NEEDED or not chat:
        return payload
    request = str(message.request_id)
    buttons = [
        _button("Approve", APPROVE, request, "primary"),
        _button("Reject", REJECT, request, "danger"),
    ]
    for block in payload["blocks"]:
        if block["type"] == "actions":
            block["elements"] = buttons + block["elements"]
    return payload


def _button(text: str, action: str, value: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action,
        "value": value,
        "style": style,
    }


class SlackAppSender:
    def __init__(self, client: WebClient, channel: str, slack_channel: str, receipts: Receipts):
        self._client, self._channel, self._slack_channel = client, channel, slack_channel
        self._receipts = receipts

    def send(self, delivery: Delivery) -> str:
        message = delivery.message
        try:
            if delivery.event == SETTLED:
                return self._settle(message)
            payload = with_decision_buttons(message)
            posted = self._client.chat_postMessage(
                channel=self._slack_channel, unfurl_links=False, **payload
            )
        except SlackApiError as exc:
            raise DeliveryFailed(f"Slack answered {_error_of(exc)}") from None
        return f"slack {posted['channel']} {posted['ts']}"

    def _settle(self, message: Message) -> str:
        """Every message that asked for this request's approval, updated; the requester told."""
        assert message.request_id is not None
        updated = 0
        for receipt in self._receipts(self._channel, message.request_id):
            _, slack_channel, ts = receipt.split(" ", 2)
            # The outcome replaces the question: its link stays, its buttons go.
            self._client.chat_update(channel=slack_channel, ts=ts, **slack_payload(message))
            updated += 1
        told = self._tell_requester(message)
        return f"slack updated {updated}" + (" and told the requester" if told else "")

    def _tell_requester(self, message: Message) -> bool:
        """A direct message to the requester, found by their Slack ID or e-mail; False if
        Slack knows no such person (the channel message still said it)."""
        person = message.data.get("requester_slack")
        email = message.data.get("requester_email")
        if not person and email:
            try:
                found = self._client.users_lookupByEmail(email=email)
            except SlackApiError as exc:
                if _error_of(exc) == "users_not_found":
                    return False
                raise
            person = found["user"]["id"]
        if not person:
            return False
        self._client.chat_postMessage(channel=person, unfurl_links=False, **slack_payload(message))
        return True

    def close(self) -> None:
        return None


def _error_of(exc: SlackApiError) -> str:
    # Slack's error codes are short words ("channel_not_found", "invalid_auth"): safe to keep.
    error = exc.response.get("error") if exc.response is not None else None
    return str(error or "an error")[:80]


def open_slack_app(
    name: str,
    token: str,
    slack_channel: str,
    api_url: str | None,
    timeout: float,
    receipts: Receipts,
) -> SlackAppSender:
    client = WebClient(token=token, base_url=api_url or DEFAULT_API, timeout=int(timeout))
    return SlackAppSender(client, name, slack_channel, receipts)
