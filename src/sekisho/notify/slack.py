"""Slack incoming webhooks: a Block Kit message posted to the channel the webhook belongs to.

The webhook URL is itself the credential, so it comes from an environment variable and never
appears in an error. Slack has no idempotency key: the delivery key travels as a header
(ignored by Slack, used by a relay or a test receiver), so a message is posted twice only if
the dispatcher dies between Slack's "ok" and recording it.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx

from sekisho.notify.base import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    USER_AGENT,
    Delivery,
    DeliveryFailed,
    redact,
    tls_context,
)
from sekisho.notify.render import slack_payload


class SlackSender:
    def __init__(self, url: str, *, timeout: float) -> None:
        self._url = url
        parts = urlsplit(url)
        self._secrets = [url, parts.path, parts.query]
        self._client = httpx.Client(
            timeout=timeout,
            verify=tls_context(None),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    def send(self, delivery: Delivery) -> str:
        body = json.dumps(slack_payload(delivery.message), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            DELIVERY_HEADER: delivery.key,
            EVENT_HEADER: delivery.event,
        }
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise DeliveryFailed("timed out") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(redact(f"{type(exc).__name__}: {exc}", self._secrets)) from None
        if not response.is_success:
            # Slack answers errors with a short code ("no_service", "invalid_payload").
            said = redact(response.text[:80].strip(), self._secrets)
            raise DeliveryFailed(f"HTTP {response.status_code} {said}".strip())
        return f"HTTP {response.status_code}"

    def close(self) -> None:
        self._client.close()
