"""Request bodies. Shape only (types, hard size caps); the services apply the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from sekisho.domain.access import Verb
from sekisho.domain.text import has_control, normalize_newlines


def one_line(value: str) -> str:
    """No control characters at all: names, filters, one-line values."""
    if has_control(value):
        raise PydanticCustomError("no_control_characters", "contains control characters")
    return value


def prose(value: str) -> str:
    """Line breaks (a form's CRLF too) and tabs, but no other control character."""
    value = normalize_newlines(value)
    if has_control(value, multiline=True):
        raise PydanticCustomError("no_control_characters", "contains control characters")
    return value


# Caps that bound memory before any rule runs; the services give the precise limits. Every
# string that can reach the store is text: whatever is stored is later shown on someone's
# terminal or page, so control characters (ESC sequences, bidi overrides) stop here.
Text = Annotated[str, Field(max_length=10_000), AfterValidator(prose)]
Short = Annotated[str, Field(max_length=512), AfterValidator(one_line)]
Line = Annotated[str, AfterValidator(one_line)]  # for queries, which set their own caps
Secret = Annotated[str, Field(max_length=512)]  # never stored nor shown: any characters


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Body):
    user: Short
    password: Secret
    otp: Annotated[Line, Field(max_length=16)]


class TokenOut(BaseModel):
    token: str
    user: str
    expires_at: datetime


class RequestCreate(Body):
    template: Short
    group: Short
    reason: Text
    user: Short | None = None
    until: Short | None = None
    for_: Short | None = Field(default=None, alias="for")
    start: Short | None = None
    info: Annotated[dict[Short, Text], Field(max_length=50)] = {}
    params: Annotated[dict[Short, Short], Field(max_length=50)] = {}

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DecisionBody(Body):
    comment: Text = ""


class RevokeBody(Body):
    reason: Text


class CredentialsBody(Body):
    role: Annotated[Line, Field(max_length=200, description="ACCOUNT/ROLE")]
    duration: Annotated[
        Annotated[Line, Field(max_length=20)] | None, Field(description="e.g. 1h")
    ] = None
    console: bool = False


class AccessQuery(Body):
    user: Short
    verb: Verb
    object: Short


class AccessOut(BaseModel):
    allowed: bool
    user: str
    verb: Verb
    object: str
    reason: str
    group: str | None
    grant_id: int | None
    grant_end: datetime | None
    standing: bool
    routes: list[dict[str, str]]


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    action: str
    outcome: str
    actor: str
    subject: str | None
    request_id: int | None
    grant_id: int | None
    object: str | None
    source: str
    detail: dict[str, Any]
    hash: str

    model_config = ConfigDict(from_attributes=True)


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str]
