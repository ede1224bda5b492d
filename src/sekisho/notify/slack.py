"""Slack incoming webhooks: a Block Kit message posted to the channel the webhook belongs to.

The webhook URL is itself the credential, so it comes from an environment variable and never
appears in an error. Slack has no idempotency key: the delivery key travels as a header
(ignored by Slack, used by a relay or a test receiver), so a message is posted twice only if
the dispatcher dies between Slack's "ok" and recording it.
"""

from __future__ import annotations

import json

from sekisho.notify.base import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    Delivery,
    DeliveryFailed,
    HttpPoster,
    redact,
)
from sekisho.notify.render import slack_payload


class SlackSender(HttpPoster):
    def __init__(self, url: str, *, timeout: float) -> None:
        super().__init__(url, timeout=timeout, secret_url=True)

    def send(self, delivery: Delivery) -> str:
        body = json.dumps(slack_payload(delivery.message), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            DELIVERY_HEADER: delivery.key,
            EVENT_HEADER: delivery.event,
        }
        response = self.post(body, headers)
        if not response.is_success:
            # Slack answers errors with a short code ("no_service", "invalid_payload").
            said = redact(response.text[:80].strip(), self._secrets)
            raise DeliveryFailed(f"HTTP {response.status_code} {said}".strip())
        return f"HTTP {response.status_code}"
