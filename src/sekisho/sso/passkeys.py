"""sekisho as a WebAuthn relying party: the options a browser's passkey ceremony takes, and
the checks of what the authenticator answered, with py_webauthn (`webauthn` on PyPI).

The library does the protocol: the client data's type, challenge and origin, the RP ID's hash,
the user-present and user-verified flags, the attestation statement, the COSE key, the
signature and the signature counter. sekisho adds what a relying party decides: its RP ID and
origins follow from `public_url` (a loopback address serves passkeys as `localhost`, since
browsers refuse an IP address as an RP ID), user verification is always required (a passkey is
then two factors: the device and the PIN or biometric), and a refusal is one safe sentence.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

TIMEOUT_MS = 120_000  # what the browser gives the person to touch or unlock their authenticator
MAX_CREDENTIAL_JSON = 32 * 1024


class PasskeyAnswerRefused(Exception):
    """What an authenticator answered does not prove the person; the message is safe to show."""


class PasskeysUnavailable(Exception):
    """sekisho's public URL is an address browsers will not use passkeys at."""


@dataclass(frozen=True)
class RelyingParty:
    id: str  # the RP ID: the public URL's host name
    name: str
    origins: tuple[str, ...]  # where the browser's ceremony may run

    @classmethod
    def of(cls, public_url: str) -> RelyingParty | None:
        """The relying party sekisho is at `public_url`; None at a non-loopback address."""
        parts = urlsplit(public_url)
        default = {"http": 80, "https": 443}.get(parts.scheme)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port and parts.port != default else ""  # as browsers say
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return cls(host, "sekisho", (f"{parts.scheme}://{host}{port}",))
        if not address.is_loopback:
            return None
        return cls("localhost", "sekisho", (f"{parts.scheme}://localhost{port}",))


@dataclass(frozen=True)
class Challenge:
    value: str  # base64url, kept by sekisho until the answer comes
    options: str  # the JSON the browser's navigator.credentials call takes


@dataclass(frozen=True)
class NewPasskey:
    credential_id: str  # base64url
    public_key: str  # the COSE key, base64url
    sign_count: int


def user_handle(user: str) -> bytes:
    """The WebAuthn user ID: stable for a person, and not their name in the clear."""
    return hashlib.sha256(f"sekisho-user:{user}".encode()).digest()


def registration(rp: RelyingParty, user: str, display: str, have: list[str]) -> Challenge:
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=user,
        user_id=user_handle(user),
        user_display_name=display or user,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(have),
    )
    return Challenge(bytes_to_base64url(options.challenge), options_to_json(options))


def assertion(rp: RelyingParty, allowed: list[str]) -> Challenge:
    options = generate_authentication_options(
        rp_id=rp.id,
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(allowed),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return Challenge(bytes_to_base64url(options.challenge), options_to_json(options))


def check_registration(rp: RelyingParty, answer: dict[str, Any], challenge: str) -> NewPasskey:
    try:
        verified = verify_registration_response(
            credential=answer,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyAnswerRefused(f"the passkey was not registered: {_why(exc)}") from None
    return NewPasskey(
        bytes_to_base64url(verified.credential_id),
        bytes_to_base64url(verified.credential_public_key),
        verified.sign_count,
    )


def check_assertion(
    rp: RelyingParty, answer: dict[str, Any], challenge: str, public_key: str, sign_count: int
) -> int:
    """The authenticator's new signature count, once its answer checks out."""
    try:
        verified = verify_authentication_response(
            credential=answer,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            credential_public_key=base64url_to_bytes(public_key),
            credential_current_sign_count=sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyAnswerRefused(f"the passkey did not confirm: {_why(exc)}") from None
    return verified.new_sign_count


def read_answer(text: str) -> dict[str, Any]:
    """The browser's credential (PublicKeyCredential.toJSON()) as an object, size-bounded."""
    if len(text) > MAX_CREDENTIAL_JSON:
        raise PasskeyAnswerRefused("the passkey's answer is too large")
    try:
        answer = json.loads(text)
    except ValueError:
        raise PasskeyAnswerRefused("the passkey's answer is not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
        raise PasskeyAnswerRefused("the passkey's answer has no credential id")
    return answer


def _descriptors(credential_ids: list[str]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in credential_ids]


def _why(exc: Exception) -> str:
    # py_webauthn's messages name the check that failed and never hold a secret.
    return str(exc)[:200] or type(exc).__name__
