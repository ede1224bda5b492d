"""Notifications' channels: a signed webhook, Slack, e-mail over SMTP, AWS SNS.

Services never call these: they write messages to the outbox (`sekisho.services.outbox`) in
the same transaction as the change, and the dispatcher (`sekisho.services.dispatcher`) hands
each message to a sender from `open_sender`. See docs/notifications.md.
"""

from sekisho.notify.base import Delivery, DeliveryFailed, Sender
from sekisho.notify.channels import config_problems, open_sender
from sekisho.notify.message import Message

__all__ = ["Delivery", "DeliveryFailed", "Message", "Sender", "config_problems", "open_sender"]
