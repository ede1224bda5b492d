"""AWS SNS: publish to a topic (the seed's report channel), with boto3.

The message is the plain-text rendering (what the topic's e-mail subscribers read); the
delivery key, the event and the request travel as message attributes, for subscribers that
dedupe or filter. A FIFO topic (`.fifo`) deduplicates by the key itself. Credentials come from
the usual AWS chain (environment, profile, instance role), never from the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sekisho.notify.base import Delivery, DeliveryFailed, parses_as_url
from sekisho.notify.render import plain_text, sns_subject

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient

ATTRIBUTE_DELIVERY = "sekisho.delivery"
ATTRIBUTE_EVENT = "sekisho.event"
ATTRIBUTE_REQUEST = "sekisho.request"


class SnsSender:
    def __init__(self, topic_arn: str, *, timeout: float, endpoint_url: str | None) -> None:
        import boto3  # slow to import; only a process that publishes pays for it
        from botocore.config import Config

        self._topic = topic_arn
        self._fifo = topic_arn.endswith(".fifo")
        region = topic_arn.split(":")[3]
        if endpoint_url is not None and not parses_as_url(endpoint_url):
            raise DeliveryFailed("the channel's endpoint_url is not a valid URL")
        try:
            self._client: SNSClient = boto3.session.Session().client(
                "sns",
                region_name=region,
                endpoint_url=endpoint_url,
                config=Config(
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    retries={"max_attempts": 1, "mode": "standard"},  # the dispatcher retries
                ),
            )
        except ValueError:  # botocore's "Invalid endpoint: ..." (a URL it cannot split)
            raise DeliveryFailed("the channel's endpoint_url is not a valid URL") from None

    def send(self, delivery: Delivery) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        message = delivery.message
        attributes: dict[str, Any] = {
            ATTRIBUTE_DELIVERY: {"DataType": "String", "StringValue": delivery.key},
            ATTRIBUTE_EVENT: {"DataType": "String", "StringValue": delivery.event},
        }
        if message.request_id is not None:
            attributes[ATTRIBUTE_REQUEST] = {
                "DataType": "Number",
                "StringValue": str(message.request_id),
            }
        extra: dict[str, str] = {}
        if self._fifo:
            extra = {"MessageGroupId": "sekisho", "MessageDeduplicationId": delivery.key}
        try:
            answer = self._client.publish(
                TopicArn=self._topic,
                Subject=sns_subject(message),
                Message=plain_text(message),
                MessageAttributes=attributes,
                **extra,
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise DeliveryFailed(
                f"SNS {error.get('Code', '?')}: {str(error.get('Message', ''))[:200]}"
            ) from None
        except BotoCoreError as exc:
            raise DeliveryFailed(f"SNS {type(exc).__name__}: {exc}"[:300]) from None
        return f"SNS MessageId {answer['MessageId']}"

    def close(self) -> None:
        self._client.close()
