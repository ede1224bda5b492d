"""AWS clients for sekisho's own calls (IAM, STS), built from the model's provider settings.

Credentials come from the usual chain (environment, instance profile, ...). With a broker
role configured, sekisho assumes it and refreshes the credentials before they expire.
Throttling and 5xx answers are retried with backoff by botocore; what still fails reaches
the caller as an error, never as a success.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.session import get_session

from sekisho.domain.access import ProviderSettings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_sts import STSClient

RETRIES = Config(
    retries={"mode": "standard", "max_attempts": 6},  # throttling and 5xx, with backoff
    connect_timeout=5,
    read_timeout=20,
)
BROKER_SESSION = "sekisho-broker"


class AwsClients:
    def __init__(
        self,
        settings: ProviderSettings,
        retries: Config = RETRIES,
        *,
        base: boto3.Session | None = None,
        role_arn: str | None = None,
    ) -> None:
        self.settings = settings
        self._config = retries
        if base is None:  # sekisho's own credentials, through its broker role if configured
            base = boto3.Session(region_name=settings.region)
            role_arn = settings.role_arn
        self._session = self._assume(base, role_arn) if role_arn else base

    def iam(self) -> IAMClient:
        return self._client("iam")  # type: ignore[no-any-return]

    def sts(self) -> STSClient:
        return self._client("sts")  # type: ignore[no-any-return]

    def in_account(self, broker_role_arn: str | None) -> AwsClients:
        """Clients acting in another account through its broker role (or these ones)."""
        if broker_role_arn is None:
            return self
        return AwsClients(self.settings, self._config, base=self._session, role_arn=broker_role_arn)

    def _client(self, service: str) -> Any:
        return self._session.client(
            service,  # type: ignore[call-overload]
            region_name=self.settings.region,
            endpoint_url=self.settings.endpoint_url,
            config=self._config,
        )

    def _assume(self, base: boto3.Session, role_arn: str) -> boto3.Session:
        sts = base.client(
            "sts",
            region_name=self.settings.region,
            endpoint_url=self.settings.endpoint_url,
            config=self._config,
        )

        def refresh() -> dict[str, str]:
            answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=BROKER_SESSION)
            creds = answer["Credentials"]
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].astimezone(UTC).isoformat(),
            }

        credentials = RefreshableCredentials.create_from_metadata(
            metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
        )
        botocore_session = get_session()
        # botocore has no public setter for refreshable credentials; this is its own idiom.
        botocore_session._credentials = credentials  # type: ignore[attr-defined]
        return boto3.Session(botocore_session=botocore_session, region_name=self.settings.region)
