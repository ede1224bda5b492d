"""Structured logs. Secrets never reach a log line: known secret keys are masked."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = frozenset({"password", "otp", "token", "totp_secret", "secret", "authorization"})


def _mask_secrets(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    for key in list(event):
        if key.lower() in SECRET_KEYS:
            event[key] = "***"
    return event


def configure(json: bool = False, level: int = logging.INFO) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
