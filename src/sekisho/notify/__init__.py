"""Notifications: who hears of what, what they read, and the channels that carry it.

Written in the change's transaction (the effect handlers call `notices.Notices`' hooks):
`routing` (which channels, which people, by role), `wording` and the `*_notices` modules
(what each message says), `outbox` (the rows to deliver), `reminders` (before a grant ends),
`reports` (what a sweep or a reconcile ended, fixed or failed to), `status` (each channel's
state) and `probe` (a channel's test message).

Delivered later by the dispatcher (`sekisho.services.dispatcher`, its rows kept by
`deliveries`), which hands each message to a sender from `open_sender`: a signed webhook,
Slack, e-mail over SMTP, AWS SNS. See docs/notifications.md.
"""

from sekisho.notify.base import Delivery, DeliveryFailed, Sender
from sekisho.notify.channels import config_problems, open_sender
from sekisho.notify.message import Message

__all__ = ["Delivery", "DeliveryFailed", "Message", "Sender", "config_problems", "open_sender"]
