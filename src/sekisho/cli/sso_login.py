"""`sekisho login --sso`: sign in through the identity provider in the browser, from a shell.

The CLI is a native app to sekisho as RFC 8252 describes: it listens on a loopback port
(127.0.0.1, any free port), opens the browser at sekisho's "Sign in with <IdP>" with that
address and a PKCE challenge (S256) of a verifier only it knows, and waits. sekisho signs the
person in at the IdP as the web UI does, then sends the browser back to the loopback address
with a one-time code; the CLI trades the code and its verifier for a sekisho token. A code
caught by another program on the machine is useless without the verifier.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from sekisho.domain.errors import AuthenticationFailed
from sekisho.domain.text import visible

WAIT_S = 300.0  # how long the CLI waits for the browser to come back
PAGE = (
    "<!doctype html><meta charset=utf-8><title>sekisho</title><p>{}</p>"
    "<p>You may close this tab and return to the terminal.</p>"
)
SIGNED_IN = "Signed in to sekisho."


@dataclass
class _Arrival:
    code: str = ""
    error: str = ""


class LoopbackReceiver:
    """A one-shot HTTP listener on 127.0.0.1 for the browser's return."""

    def __init__(self) -> None:
        self.path = "/" + secrets.token_urlsafe(16)  # unguessable: stray requests are ignored
        self._arrived = threading.Event()
        self._arrival = _Arrival()
        self._server = HTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{self.path}"

    def __enter__(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout: float = WAIT_S) -> str:
        """The one-time code the browser brought back; AuthenticationFailed otherwise."""
        if not self._arrived.wait(timeout):
            raise AuthenticationFailed(
                f"no sign-in came back within {int(timeout)} s; run sekisho login --sso again"
            )
        if self._arrival.error or not self._arrival.code:
            # sekisho's own words (or the IdP's code), shown as text on the terminal
            raise AuthenticationFailed(visible(self._arrival.error or "sign-in refused: no code"))
        return self._arrival.code

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != receiver.path or receiver._arrived.is_set():
                    self.send_error(404)
                    return
                query = parse_qs(parts.query)
                receiver._arrival = _Arrival(
                    code=query.get("code", [""])[0][:512], error=query.get("error", [""])[0][:200]
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                said = receiver._arrival.error or SIGNED_IN  # sekisho's "Sign-in refused: ..."
                self.wfile.write(PAGE.format(html.escape(said)).encode())
                receiver._arrived.set()

            def log_message(self, format: str, *args: object) -> None:
                return  # the terminal shows the CLI's own words, not an access log

        return Handler


@dataclass(frozen=True)
class SsoStart:
    url: str  # where the browser goes: sekisho's sign-in, then the IdP
    verifier: str  # the PKCE verifier, kept by the CLI


def sso_start(server: str, redirect_uri: str, *, fresh: bool = False) -> SsoStart:
    verifier = secrets.token_urlsafe(48)
    params = {"cli_redirect": redirect_uri, "cli_challenge": create_s256_code_challenge(verifier)}
    query = urlencode(params | ({"fresh": "true"} if fresh else {}))
    return SsoStart(f"{server.rstrip('/')}/signin/oidc?{query}", verifier)


def open_browser(url: str, say: Callable[[str], None], *, browser: bool = True) -> None:
    """Open the URL, and print it too: a headless shell or a browser elsewhere can use it."""
    say(f"sign in in your browser; if it does not open, open:\n  {url}")
    if browser:
        webbrowser.open(url)


class _Api(Protocol):
    def post(self, path: str, **kwargs: Any) -> Any: ...


def device_token(
    api: _Api, say: Callable[[str], None], sleep: Callable[[float], None] = time.sleep
) -> Any:
    """`sekisho login --device` (RFC 8628): show the code to enter at the IdP, then ask
    sekisho every interval until the person has approved; the token's answer."""
    started = api.post("/auth/sso/device", auth=False)
    say(
        f"to sign in, open {visible(started['verification_uri'])} in any browser "
        f"and enter the code {visible(started['user_code'])}"
    )
    if started.get("verification_uri_complete"):
        say(f"  or open: {visible(started['verification_uri_complete'])}")
    interval = float(started["interval"])
    deadline = time.monotonic() + WAIT_S * 2
    while time.monotonic() < deadline:
        sleep(interval)
        answer = api.post("/auth/sso/device/token", auth=False, json={"handle": started["handle"]})
        if "token" in answer:
            return answer
        interval = float(answer.get("interval", interval))
    raise AuthenticationFailed("the device sign-in was not approved in time; run it again")
