"""One message, rendered for each channel: plain text, HTML, Slack Block Kit, webhook JSON."""

from __future__ import annotations

import html
import json
from typing import Any

from sekisho.notify.message import Message

SLACK_TEXT_MAX = 2900  # a section's text may hold 3000 characters
SLACK_FIELDS_MAX = 10  # a section holds at most 10 fields
SNS_SUBJECT_MAX = 100


def plain_text(message: Message) -> str:
    parts = [message.title, "", message.summary]
    if message.facts:
        width = max(len(label) for label, _ in message.facts) + 1
        parts.append("")
        for label, value in message.facts:
            lines = value.splitlines() or [""]
            parts.append(f"  {label + ':':<{width}} {lines[0]}")
            parts += [f"  {'':<{width}} {line}" for line in lines[1:]]
    if message.lines:
        parts.append("")
        parts += [f"  - {line}" for line in message.lines]
    parts += ["", f"{message.link_label}: {message.link}", "", f"-- sekisho, {_footer(message)}"]
    return "\n".join(parts) + "\n"


def html_text(message: Message) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><th align="left" valign="top" style="padding:2px 12px 2px 0">{e(label)}</th>'
        f'<td style="padding:2px 0;white-space:pre-wrap">{e(value)}</td></tr>'
        for label, value in message.facts
    )
    items = "".join(f"<li>{e(line)}</li>" for line in message.lines)
    return (
        '<!doctype html><html><body style="font-family:sans-serif;font-size:14px">'
        f'<h2 style="font-size:16px">{e(message.title)}</h2>'
        f"<p>{e(message.summary)}</p>"
        + (f"<table>{rows}</table>" if rows else "")
        + (f"<ul>{items}</ul>" if items else "")
        + f'<p><a href="{e(message.link, quote=True)}">{e(message.link_label)}</a></p>'
        f'<p style="color:#666;font-size:12px">sekisho, {e(_footer(message))}</p>'
        "</body></html>"
    )


def slack_payload(message: Message) -> dict[str, Any]:
    """An incoming-webhook payload: Block Kit blocks, and `text` for notifications."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(message.summary)}},
    ]
    if message.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _mrkdwn(f"*{label}*\n{value}", 1900)}
                    for label, value in message.facts[:SLACK_FIELDS_MAX]
                ],
            }
        )
    if message.lines:
        text = "\n".join(f"• {line}" for line in message.lines)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(text)}})
    blocks += [
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": message.link_label[:75]},
                    "url": message.link,
                }
            ],
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _mrkdwn(f"sekisho · {_footer(message)}")}],
        },
    ]
    fallback = f"{_escape(message.title)} <{message.link}|{_escape(message.link_label)}>"
    return {"text": fallback, "blocks": blocks}


def webhook_body(message: Message, key: str) -> bytes:
    """The generic webhook's JSON: everything a receiver needs to act or route."""
    body = {
        "id": key,  # the idempotency key; also X-Sekisho-Delivery
        "event": message.event,
        "occurred_at": message.occurred_at,
        "title": message.title,
        "summary": message.summary,
        "url": message.link,
        "request_id": message.request_id,
        "grant_id": message.grant_id,
        "template": message.template,
        "facts": dict(message.facts),
        "lines": list(message.lines),
        "recipients": [{"user": user, "role": role} for user, role in message.recipients],
        "data": message.data,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def sns_subject(message: Message) -> str:
    """SNS subjects: ASCII, one line, at most 100 characters."""
    ascii_only = message.title.encode("ascii", "replace").decode().replace("\n", " ")
    return ascii_only[:SNS_SUBJECT_MAX]


def _footer(message: Message) -> str:
    return f"{message.event} at {message.occurred_at}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str, limit: int = SLACK_TEXT_MAX) -> str:
    escaped = _escape(text)
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"
