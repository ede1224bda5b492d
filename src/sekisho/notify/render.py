"""One message, rendered for each channel: plain text, HTML, Slack Block Kit, webhook JSON."""

from __future__ import annotations

import html
import json
from typing import Any

from sekisho.notify.message import Message

SLACK_TEXT_MAX = 2900  # a section's text may hold 3000 characters
SLACK_FIELD_MAX = 1900  # a field may hold 2000
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
    """An incoming-webhook payload: Block Kit blocks, and `text` for notifications.

    What people typed (reasons, comments, change information) is shown as text: `&`, `<` and
    `>` escaped (no `<!channel>`, `<url|label>` or `<@user>` of theirs is parsed), and every
    mrkdwn object `verbatim` (no typed `@here` or channel name becomes a mention or a link)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
        {"type": "section", "text": _mrkdwn(message.summary)},
    ]
    if message.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    _mrkdwn(value, SLACK_FIELD_MAX, bold=label)
                    for label, value in message.facts[:SLACK_FIELDS_MAX]
                ],
            }
        )
    if message.lines:
        text = "\n".join(f"• {line}" for line in message.lines)
        blocks.append({"type": "section", "text": _mrkdwn(text)})
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
            "elements": [_mrkdwn(f"sekisho · {_footer(message)}")],
        },
    ]
    fallback = f"{slack_escape(message.title)} <{message.link}|{slack_escape(message.link_label)}>"
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


_SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def slack_escape(text: str) -> str:
    return "".join(_SLACK_ESCAPES.get(c, c) for c in text)


def _mrkdwn(text: str, limit: int = SLACK_TEXT_MAX, *, bold: str = "") -> dict[str, Any]:
    """A verbatim mrkdwn text object showing `text` (after `bold`, a label, on its own line),
    cut to `limit` characters between escapes, never inside one."""
    head = f"*{slack_escape(bold)}*\n" if bold else ""
    escaped = slack_escape(text)
    if len(head) + len(escaped) > limit:
        room = limit - len(head) - 1
        kept = ""
        for char in text:
            piece = _SLACK_ESCAPES.get(char, char)
            if len(kept) + len(piece) > room:
                break
            kept += piece
        escaped = kept + "…"
    return {"type": "mrkdwn", "text": head + escaped, "verbatim": True}
