"""Sign-in through the model's identity provider, as interfaces call it (the web's "Sign in
with <IdP>" and its callback, the CLI's hand-off): `StartIdpSignIn`, `FinishIdpSignIn` and
`RedeemHandOff` behind one name."""

from __future__ import annotations

from sekisho.domain.identity import IssuedToken
from sekisho.domain.sso import CliReturn, OidcSettings
from sekisho.operations.cli_sign_in import RedeemHandOff
from sekisho.operations.device_sign_in import (
    DeviceStarted,
    DeviceWaiting,
    PollDeviceSignIn,
    StartDeviceSignIn,
)
from sekisho.operations.idp_sign_in import (
    Callback,
    FinishedSignIn,
    FinishIdpSignIn,
    StartedSignIn,
    StartIdpSignIn,
)
from sekisho.ports import ModelSource

CALLBACK_PATH = "/signin/oidc/callback"  # the redirect URI to register at the IdP


class IdpSignInService:
    def __init__(
        self,
        models: ModelSource,
        start: StartIdpSignIn,
        finish: FinishIdpSignIn,
        redeem: RedeemHandOff,
        device: tuple[StartDeviceSignIn, PollDeviceSignIn],
    ) -> None:
        self._models, self._start, self._finish, self._redeem = models, start, finish, redeem
        self._start_device, self._poll_device = device

    def provider(self) -> OidcSettings | None:
        """The model's identity provider; None: password + TOTP only."""
        return self._models.model().identity.oidc

    def start(
        self,
        redirect_uri: str,
        next_url: str,
        source: str,
        cli: CliReturn | None = None,
        *,
        fresh: bool = False,
    ) -> StartedSignIn:
        return self._start.execute(redirect_uri, next_url, source, cli, fresh=fresh)

    def finish(self, callback: Callback) -> FinishedSignIn:
        return self._finish.execute(callback)

    def redeem(self, code: str, verifier: str, source: str) -> IssuedToken:
        """The CLI's one-time code and PKCE verifier -> its login token."""
        return self._redeem.execute(code, verifier, source)

    def start_device(self, source: str) -> DeviceStarted:
        """`sekisho login --device`: a user code to enter at the IdP, and a handle to poll."""
        return self._start_device.execute(source)

    def poll_device(self, handle: str, source: str) -> IssuedToken | DeviceWaiting:
        return self._poll_device.execute(handle, source)
