"""The device authorization grant (RFC 8628) with the model's identity provider, for a shell
with no browser: `sekisho login --device`.

sekisho is the IdP's client here, as for the web: it asks the IdP for a device code, the
person enters the user code at the IdP from any browser, and sekisho polls the IdP's token
endpoint until they have (no faster than the IdP's interval; `slow_down` adds 5 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.common.urls import add_params_to_qs
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from sekisho.domain.sso import OidcSettings
from sekisho.notify.base import safe_transport
from sekisho.sso.oidc import IdpRefused, IdpUnavailable, OidcClient

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
STILL_WAITING = frozenset({"authorization_pending", "slow_down"})
DEFAULT_INTERVAL_S = 5  # RFC 8628 3.2: when the IdP names none
MAX_EXPIRES_S = 1800


@dataclass(frozen=True)
class DeviceGrant:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


def start_device(client: OidcClient, settings: OidcSettings) -> DeviceGrant:
    """A device code from the IdP; IdpUnavailable if it offers no device sign-in."""
    endpoint = client.metadata(settings).device_authorization_endpoint
    if endpoint is None:
        raise IdpUnavailable("the identity provider offers no device sign-in (RFC 8628)")
    body = add_params_to_qs("", [("scope", " ".join(settings.scopes))])
    return _grant_of(client.post_form(settings, endpoint, body))


def _grant_of(answer: dict[str, Any]) -> DeviceGrant:
    texts = {k: answer.get(k) for k in ("device_code", "user_code", "verification_uri")}
    if not all(isinstance(v, str) and 0 < len(v) <= 2048 for v in texts.values()):
        raise IdpUnavailable("the identity provider's device answer lacks its codes")
    complete = answer.get("verification_uri_complete")
    for uri in (texts["verification_uri"], complete):
        if uri is not None and (not isinstance(uri, str) or not safe_transport(uri)):
            raise IdpUnavailable("the identity provider's verification_uri is not https")
    return DeviceGrant(
        device_code=str(texts["device_code"]),
        user_code=str(texts["user_code"]),
        verification_uri=str(texts["verification_uri"]),
        verification_uri_complete=complete if isinstance(complete, str) else None,
        expires_in=_seconds(answer.get("expires_in"), 600, MAX_EXPIRES_S),
        interval=_seconds(answer.get("interval"), DEFAULT_INTERVAL_S, 60),
    )


def _seconds(value: object, default: int, most: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return default
    return min(value, most)


def poll_device(
    client: OidcClient, settings: OidcSettings, device_code: str
) -> dict[str, Any] | str:
    """The ID token's claims once the person has approved; else the IdP's waiting code
    (`authorization_pending`, `slow_down`). IdpRefused when they refused or it expired."""
    body = prepare_token_request(DEVICE_GRANT, device_code=device_code)
    try:
        tokens = client.post_form(settings, client.metadata(settings).token_endpoint, body)
    except IdpRefused as exc:
        if exc.error in STILL_WAITING:
            return exc.error
        raise
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise IdpRefused("the identity provider sent no ID token (is openid in scopes?)")
    return client.verify_id_token(settings, id_token, None, tokens.get("access_token"))
