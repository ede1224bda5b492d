"""Where signed checkpoints go, outside the database: an anchor file, an S3 bucket.

Each sink writes one checkpoint at a time and never rewrites what it wrote: the file is opened
for appending only, and an S3 object is written once under a new key (with Object Lock
retention when configured, so not even the bucket's owner can delete it before its time).
A sink that fails loses nothing that matters: the next checkpoint vouches for everything the
missed one did, and more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sekisho.clock import Clock
from sekisho.services.audit_anchor import MAX_LINE, AnchorError, Checkpoint, parse_lines

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

ANCHOR_MODE = 0o644  # not a secret: its worth is that only its keeper can change it
TAIL_BYTES = 8192  # enough for the last line of an anchor file


class ExportFailed(Exception):
    """A sink could not take a checkpoint; the message names the sink, never a secret."""


class Sink(Protocol):
    name: str

    def append(self, checkpoint: Checkpoint) -> str:
        """Write it; return where it went. Raises ExportFailed."""
        ...


class FileSink:
    """A JSON Lines anchor file, appended to (O_APPEND: each line lands whole at the end)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file {path}"

    def append(self, checkpoint: Checkpoint) -> str:
        line = (checkpoint.to_line() + "\n").encode()
        try:
            fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, ANCHOR_MODE
            )
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise ExportFailed(f"{self.name}: {exc.strerror}") from None
        return str(self.path)

    def last(self) -> Checkpoint | None:
        """The file's last checkpoint, or None if there is no file (or no line) yet."""
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - TAIL_BYTES))
                tail = f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AnchorError(f"cannot read the anchor {self.path}: {exc.strerror}") from exc
        lines = [line for line in tail.splitlines() if line.strip()]
        return parse_lines(lines[-1:], f"{self.path} (last line)")[0] if lines else None


@dataclass(frozen=True)
class S3Place:
    bucket: str
    prefix: str  # "" or ending with "/"

    @classmethod
    def parse(cls, url: str) -> S3Place:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return cls(bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/")

    def key(self, checkpoint: Checkpoint) -> str:
        # Sorted by the entry they vouch for: the newest checkpoint lists last.
        return f"{self.prefix}{checkpoint.seq:015d}-{checkpoint.id:012d}.json"


class S3Sink:
    """One object per checkpoint, written once; with Object Lock retention when asked."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        region: str | None = None,
        endpoint_url: str | None = None,
        retain: timedelta | None = None,
        lock_mode: str = "COMPLIANCE",
        timeout: float = 10.0,
    ) -> None:
        self.place = S3Place.parse(url)
        self.name = f"s3://{self.place.bucket}/{self.place.prefix}"
        self._clock = clock
        self._retain = retain
        self._lock_mode = lock_mode
        self._client = s3_client(region, endpoint_url, timeout)

    def append(self, checkpoint: Checkpoint) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.place.key(checkpoint)
        extra: dict[str, object] = {}
        if self._retain is not None:
            extra["ObjectLockMode"] = self._lock_mode
            extra["ObjectLockRetainUntilDate"] = self._clock.now() + self._retain
        try:
            self._client.put_object(
                Bucket=self.place.bucket,
                Key=key,
                Body=(checkpoint.to_line() + "\n").encode(),
                ContentType="application/x-ndjson",
                ChecksumAlgorithm="SHA256",  # Object Lock needs a checksum; S3 checks it
                **extra,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ExportFailed(
                f"{self.name}: S3 {error.get('Code', '?')}: {str(error.get('Message', ''))[:200]}"
            ) from None
        except BotoCoreError as exc:
            raise ExportFailed(f"{self.name}: {type(exc).__name__}: {exc}"[:300]) from None
        return f"s3://{self.place.bucket}/{key}"


def s3_client(region: str | None, endpoint_url: str | None, timeout: float = 10.0) -> S3Client:
    import boto3  # slow to import: only a process that exports pays for it
    from botocore.config import Config

    client: S3Client = boto3.session.Session().client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )
    return client


def read_s3_anchor(
    url: str, *, region: str | None = None, endpoint_url: str | None = None, newest: int = 100
) -> list[Checkpoint]:
    """The `newest` checkpoints under an S3 prefix, as an anchor (`audit verify --anchor
    s3://...`). Keys sort by the entry they vouch for, and each checkpoint vouches for every
    entry before its own, so the newest are the ones that matter; listing is cheap, fetching
    every object of years of checkpoints is not."""
    from botocore.exceptions import BotoCoreError, ClientError

    place = S3Place.parse(url)
    client = s3_client(region, endpoint_url)
    found: list[Checkpoint] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=place.bucket, Prefix=place.prefix
        )
        keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []))
        for key in keys[-newest:]:
            body = client.get_object(Bucket=place.bucket, Key=key)["Body"].read(MAX_LINE * 4)
            text = body.decode("utf-8", errors="replace")
            found += parse_lines(text.splitlines(), f"s3://{place.bucket}/{key}")
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AnchorError(f"cannot read {url}: S3 {error.get('Code', '?')}") from None
    except BotoCoreError as exc:
        raise AnchorError(f"cannot read {url}: {type(exc).__name__}") from None
    if not found:
        raise AnchorError(f"{url} holds no checkpoint")
    return found
