"""Helpers for tests: people from the example model acting through the services."""

from __future__ import annotations

import pyotp

from sekisho.domain.actor import Actor
from sekisho.services.core import Core
from sekisho.services.workflow import RequestDraft

MEMBER = Actor("member01", "198.51.100.7")
MEMBER2 = Actor("member02", "198.51.100.8")
LEADER = Actor("leader01", "198.51.100.9")
LEADER2 = Actor("leader02", "198.51.100.10")
ADMIN = Actor("admin01", "198.51.100.11")
AUDITOR = Actor("auditor01", "198.51.100.12")

INFO = {
    "target": "payment admin console",
    "change": "rotate the merchant API key",
    "impact": "none expected",
    "plan": "1. open console 2. rotate",
    "rollback": "restore the previous key",
}


def draft(**overrides: object) -> RequestDraft:
    fields: dict[str, object] = {
        "template": "AddUserToGroup",
        "group": "ProdMemberWorkGroup",
        "reason": "fix the payment console",
        "duration": "2h",
        "info": INFO,
    }
    fields.update(overrides)
    return RequestDraft(**fields)  # type: ignore[arg-type]


def code_for(core: Core, secret: str, offset_steps: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(core.now()) + offset_steps)
