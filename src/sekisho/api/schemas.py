"""Request bodies. Shape only (types, hard size caps); the services apply the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from sekisho.domain.access import Verb
from sekisho.domain.text import has_control, no_control_pattern, normalize_newlines


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
# The OpenAPI document states the rule as a pattern (made when the document is, not at import:
# it walks the Unicode tables); the validators enforce it with a rule name of their own.
def _one_line_pattern(schema: dict[str, Any]) -> None:
    schema["pattern"] = no_control_pattern()


def _prose_pattern(schema: dict[str, Any]) -> None:
    schema["pattern"] = no_control_pattern(multiline=True)


Text = Annotated[
    str, Field(max_length=10_000, json_schema_extra=_prose_pattern), AfterValidator(prose)
]
Short = Annotated[
    str, Field(max_length=512, json_schema_extra=_one_line_pattern), AfterValidator(one_line)
]
# For queries, which set their own caps.
Line = Annotated[str, Field(json_schema_extra=_one_line_pattern), AfterValidator(one_line)]
Secret = Annotated[str, Field(max_length=512)]  # never stored nor shown: any characters


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Body):
    user: Short
    password: Secret
    otp: Annotated[Line, Field(max_length=16)]

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user": "member01", "password": "...", "otp": "123456"}]},
    )


class SsoCodeBody(Body):
    """`sekisho login --sso`: the one-time code the browser brought to the CLI's loopback
    listener, and the PKCE verifier the CLI started with."""

    code: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
    code_verifier: Annotated[
        str, Field(min_length=43, max_length=128, pattern=r"^[A-Za-z0-9._~-]+$")
    ]

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"code": "Zx9...", "code_verifier": "dBjftJeZ4CVP..."}]},
    )


class DeviceStartOut(BaseModel):
    """Enter `user_code` at `verification_uri` (or open `verification_uri_complete`), then
    poll with `handle` every `interval` seconds until `expires_at`."""

    handle: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: datetime
    interval: int


class DevicePollBody(Body):
    handle: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"handle": "..."}]})


class DeviceWaitingOut(BaseModel):
    """Not approved at the identity provider yet: poll again after `interval` seconds."""

    status: Literal["authorization_pending"] = "authorization_pending"
    interval: int


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
    # Break-glass on a template with `emergency`: granted at once, with the reason and the
    # ticket parameter required; an approver reviews it after the incident.
    emergency: bool = False

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "template": "AddUserToGroup",
                    "group": "ProdMemberWorkGroup",
                    "for": "2h",
                    "reason": "Rotate the payment console API key",
                    "info": {
                        "target": "payment admin console",
                        "change": "rotate the merchant key",
                        "rollback": "restore the previous key",
                    },
                }
            ]
        },
    )


class DecisionBody(Body):
    comment: Text = ""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"comment": "OK, go ahead"}]}
    )


class ReviewBody(Body):
    """An emergency's post-incident review: what the reviewer found (required)."""

    comment: Text = ""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"comment": "Justified: the primary DB failed over"}]},
    )


class RevokeBody(Body):
    reason: Text

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "incident 42: access no longer needed"}]},
    )


class ExtendBody(Body):
    """More time on a grant: exactly one of `for` (added to its current end) and `until`."""

    reason: Text
    until: Short | None = None
    for_: Short | None = Field(default=None, alias="for")

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"examples": [{"for": "1h", "reason": "the key rotation overran"}]},
    )


class CredentialsBody(Body):
    role: Annotated[Line, Field(max_length=200, description="ACCOUNT/ROLE")]
    duration: Annotated[
        Annotated[Line, Field(max_length=20)] | None, Field(description="e.g. 1h")
    ] = None
    console: bool = False

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"role": "prod/Prod_MemberRole", "duration": "1h"}]},
    )


class AccessQuery(Body):
    user: Short
    verb: Verb
    object: Short

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"user": "member01", "verb": "assume", "object": "prod/Prod_MemberRole"}]
        },
    )


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


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str]
    anchor_checkpoints: int = 0  # the anchor's checkpoints compared with the chain
    anchored_seq: int = 0  # the last entry a checkpoint of the anchor vouches for
    notes: list[str] = []  # what the result does not prove


class AnchorBody(Body):
    """Checkpoints from an anchor kept outside sekisho's database (the newest suffice: each
    vouches for every entry before its own)."""

    checkpoints: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=100)]


class FieldError(BaseModel):
    field: str
    rule: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem (application/problem+json): every refusal has this shape."""

    type: Annotated[str, Field(examples=["urn:sekisho:problem:invalid-input"])]
    title: str
    status: int
    detail: str
    instance: str
    code: Annotated[str, Field(description="machine-readable: invalid-input, not-found, ...")]
    errors: Annotated[
        list[FieldError] | None, Field(description="invalid input: one per field, with the rule")
    ] = None


class LockBody(Body):
    kind: Short  # user | target | group | role
    subject: Short  # a user, a target, a group, or ACCOUNT/ROLE
    reason: Short
    until: Short | None = None  # ISO 8601; without a zone, in the model's
    for_: Short | None = Field(default=None, alias="for")  # 2h, 1d

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"kind": "user", "subject": "member01", "reason": "laptop stolen"}]
        },
    )


# -- Shared Signals (SSF 1.0): fields a receiver sends that sekisho does not use are ignored,
# as the spec asks of a transmitter, so receivers written for other transmitters work.

Url = Annotated[
    str, Field(max_length=2048, json_schema_extra=_one_line_pattern), AfterValidator(one_line)
]


class StreamDeliveryBody(BaseModel):
    method: Short  # urn:ietf:rfc:8935
    endpoint_url: Url
    authorization_header: Annotated[str, Field(max_length=4096)] | None = None  # a secret

    model_config = ConfigDict(extra="ignore")


class StreamBody(BaseModel):
    delivery: StreamDeliveryBody
    events_requested: Annotated[list[Short], Field(max_length=50)] = []
    description: Short = ""
    aud: Short | None = None  # default: the endpoint URL

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "delivery": {
                        "method": "urn:ietf:rfc:8935",
                        "endpoint_url": "https://app.example.com/ssf/events",
                        "authorization_header": "Bearer s3cr3t",
                    },
                    "events_requested": [
                        "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
                    ],
                }
            ]
        },
    )


class VerifyBody(BaseModel):
    stream_id: Short
    state: Short = ""

    model_config = ConfigDict(extra="ignore")


class SetError(BaseModel):
    """A refused SET, as RFC 8935 §2.3 answers it (not a problem document: transmitters
    read this shape)."""

    err: str  # invalid_request, invalid_key, invalid_issuer, invalid_audience, ...
    description: str
