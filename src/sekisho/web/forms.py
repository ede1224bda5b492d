"""Reading forms: what a person typed, turned into the services' own inputs.

Only shape is handled here (which box holds what, the browser's time zone); every rule is
the services' to apply, so the web refuses exactly what the CLI and the API refuse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, Request
from starlette.datastructures import FormData

from sekisho.domain.drafts import RequestDraft
from sekisho.domain.extensions import ExtensionDraft

QUICK_DURATIONS = ("30m", "1h", "2h", "4h")
UNTIL = "until"
INFO_PREFIX, PARAM_PREFIX = "info.", "param."
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def text(form: Mapping[str, object], name: str, *, strip: bool = True) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return value.strip() if strip else value


def with_zone(value: str, zone_name: str) -> str:
    """A `datetime-local` value, which carries no zone, in the browser's zone.

    The page's script sends the browser's IANA zone; without it (no script) the value goes
    on as typed and the server reads it in the model's zone, as the page says.
    """
    value = value.strip()
    if not value or not zone_name or not _LOCAL_TIME.fullmatch(value):
        return value
    try:
        zone = ZoneInfo(zone_name[:64])
        return datetime.fromisoformat(value).replace(tzinfo=zone).isoformat()
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return value


def request_draft(form: Mapping[str, object]) -> RequestDraft:
    """The new-request form as the draft `core.workflow.file` takes."""
    zone = text(form, "tz")
    end = text(form, "end")
    info = {
        key[len(INFO_PREFIX) :]: value.strip()
        for key, value in form.items()
        if key.startswith(INFO_PREFIX) and isinstance(value, str) and value.strip()
    }
    params = {
        key[len(PARAM_PREFIX) :]: value.strip()
        for key, value in form.items()
        if key.startswith(PARAM_PREFIX) and isinstance(value, str) and value.strip()
    }
    return RequestDraft(
        template=text(form, "template"),
        group=text(form, "group"),
        reason=text(form, "reason"),
        until=(with_zone(text(form, "until"), zone) or None) if end == UNTIL else None,
        # A quick duration counts from the activation, as `--for` does.
        duration=end if end in QUICK_DURATIONS else None,
        start=with_zone(text(form, "start"), zone) or None,
        info=info,
        params=params,
        emergency=text(form, "emergency") == "on",  # the checkbox, sent only when ticked
    )


def extension_draft(form: Mapping[str, object]) -> ExtensionDraft:
    """The grant's Extend form as the draft `core.workflow.extend` takes: a quick duration
    added to the current end, or a new end."""
    end = text(form, "end")
    return ExtensionDraft(
        reason=text(form, "reason"),
        until=(with_zone(text(form, "until"), text(form, "tz")) or None) if end == UNTIL else None,
        duration=end if end in QUICK_DURATIONS else None,
    )
