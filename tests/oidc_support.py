"""A real OpenID Provider for tests: oidc-provider (Node) run from Python, and a browserless user.

The provider is ``tests/oidc/provider.mjs`` (see its header for the config JSON). It needs ``node``
and ``tests/oidc/node_modules`` (``npm ci --prefix tests/oidc``; ``make test`` and ``.ci/run`` do
it). Without them the tests skip, except under CI=true, where they fail::

    import oidc_support
    from oidc_support import TestProvider, new_signing_key, sign_in

    def test_sign_in(tmp_path):
        oidc_support.require_provider()  # skip (or fail under CI=true) without node/npm packages
        client = {
            "client_id": "sekisho",
            "client_secret": "s3cret",
            "redirect_uris": ["http://127.0.0.1:9999/signin/oidc/callback"],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }
        accounts = {"member01": {"email": "member01@example.test", "groups": ["engineers"]}}
        with TestProvider(tmp_path, [client], accounts, amr=["pwd", "mfa"]) as op:
            discovery = op.discovery()  # GET <issuer>/.well-known/openid-configuration
            ...build an authorize URL for discovery["authorization_endpoint"] (PKCE S256)...
            callback = sign_in(url, "member01", redirect_uri_prefix=client["redirect_uris"][0])
            # callback is the full redirect URL (code, state, iss), not yet requested
            op.restart(keys=[new_signing_key("ES256")])  # key rotation: same issuer, new kid

Endpoints (oidc-provider defaults): /auth, /token, /me (userinfo), /jwks, /device/auth
(device authorization), /device (user code page), /session/end, /token/revocation,
/token/introspection, and the sign-in pages under /interaction/<uid>.

The login page accepts any password; the login must be a name in ``accounts`` (sub and
preferred_username are that name), else the page comes back and ``sign_in`` raises AssertionError.
ID tokens carry the scope's claims (profile: name, preferred_username; email; groups), plus sub,
auth_time, nonce (when sent) and, when configured, amr and acr.
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urljoin

import httpx
import pytest
from joserfc.jwk import ECKey, KeyParameters, RSAKey

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
NODE_MODULES = OIDC_DIR / "node_modules"
PROVIDER_SCRIPT = OIDC_DIR / "provider.mjs"
START_TIMEOUT = 20.0
# oidc-provider 9 uses URL.parse (Node 22.1, backported to 20.18); it warns on Node 20 but works.
MIN_NODE = (20, 18, 0)
MAX_STEPS = 30  # requests one sign-in may take before it counts as a loop


@functools.cache
def _node_version() -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            ["node", "--version"], check=False, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)\s*", out.stdout)
    return tuple(int(part) for part in match.groups()) if match else None


def provider_available() -> str | None:
    """None when the provider can run here, else why not (a skip reason)."""
    if shutil.which("node") is None:
        return "node is not on PATH: install Node.js 20.18+ to run the OpenID Provider tests"
    version = _node_version()
    if version is None or version < MIN_NODE:
        shown = "v" + ".".join(map(str, version)) if version else "unknown"
        wanted = ".".join(map(str, MIN_NODE))
        return f"node {shown} is too old for oidc-provider 9: install Node.js {wanted}+"
    if not (NODE_MODULES / "oidc-provider").is_dir():
        return (
            f"{NODE_MODULES / 'oidc-provider'} is missing: run "
            "`npm ci --prefix tests/oidc` (make test does it when npm is installed)"
        )
    return None


def require_provider() -> None:
    """Skip the calling test when the provider cannot run; under CI=true, fail it instead."""
    reason = provider_available()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}: the OpenID Provider tests must run in CI")
    pytest.skip(reason)


def new_signing_key(
    kind: Literal["RS256", "ES256"] = "RS256", kid: str | None = None
) -> dict[str, Any]:
    """A fresh private signing JWK (with kid, alg and use="sig") for TestProvider's keys."""
    parameters: KeyParameters = {
        "kid": kid or f"{kind.lower()}-{uuid.uuid4().hex[:12]}",
        "alg": kind,
        "use": "sig",
    }
    if kind == "RS256":
        key: RSAKey | ECKey = RSAKey.generate_key(2048, parameters=parameters, private=True)
    elif kind == "ES256":
        key = ECKey.generate_key("P-256", parameters=parameters, private=True)
    else:
        raise ValueError(f"unsupported key kind {kind!r}: use RS256 or ES256")
    jwk = dict(key.as_dict(private=True))
    jwk.update({"kid": parameters["kid"], "alg": kind, "use": "sig"})
    return jwk


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestProvider:
    """oidc-provider on a free 127.0.0.1 port, as a subprocess. Use as a context manager or
    start()/stop(). restart(keys=...) keeps the port and issuer (key rotation); sessions and codes
    live in the provider's memory, so a restart forgets them."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        tmp_dir: Path,
        clients: list[dict[str, Any]],
        accounts: dict[str, dict[str, Any]],
        keys: list[dict[str, Any]] | None = None,
        ttl: dict[str, int] | None = None,
        amr: list[str] | None = None,
        acr: str | None = None,
    ) -> None:
        self.tmp_dir = Path(tmp_dir)
        self.clients = clients
        self.accounts = accounts
        self.keys = keys if keys is not None else [new_signing_key("RS256")]
        self.ttl = ttl
        self.amr = amr
        self.acr = acr
        self.port = _free_port()
        self.config_path = self.tmp_dir / f"oidc-provider-{self.port}.json"
        self.log_path = self.tmp_dir / f"oidc-provider-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def config(self) -> dict[str, Any]:
        """The JSON that provider.mjs reads."""
        config: dict[str, Any] = {
            "port": self.port,
            "issuer": self.issuer,
            "keys": {"keys": self.keys},
            "clients": self.clients,
            "accounts": self.accounts,
        }
        if self.ttl is not None:
            config["ttl"] = self.ttl
        if self.amr is not None:
            config["amr"] = self.amr
        if self.acr is not None:
            config["acr"] = self.acr
        return config

    def discovery(self) -> dict[str, Any]:
        """The provider's metadata (GET <issuer>/.well-known/openid-configuration)."""
        response = httpx.get(self.discovery_url, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def log(self) -> str:
        """What the provider wrote to stderr (errors; its development warnings are dropped)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Self:
        if self.running:
            raise RuntimeError(f"the OpenID Provider at {self.issuer} is already running")
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                ["node", str(PROVIDER_SCRIPT), str(self.config_path)],
                stdin=subprocess.PIPE,  # the provider exits when this closes (we have gone)
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=OIDC_DIR,
            )
        self._process = process
        try:
            self._wait_ready(process)
        except BaseException as error:
            self.stop()
            stderr = self.log_path.read_bytes()[log_start:].decode(errors="replace").strip()
            raise RuntimeError(f"{error}\nprovider stderr:\n{stderr or '(empty)'}") from None
        return self

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        expected = f"READY {self.issuer}"
        deadline = time.monotonic() + START_TIMEOUT
        received = b""
        while b"\n" not in received:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"the OpenID Provider did not start within {START_TIMEOUT:g} s")
            readable, _, _ = select.select([process.stdout], [], [], min(remaining, 0.5))
            if readable:
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:  # EOF: the process has exited or closed stdout
                    code = process.wait(timeout=5)
                    raise RuntimeError(f"the OpenID Provider exited with status {code}")
                received += chunk
            elif process.poll() is not None:
                raise RuntimeError(f"the OpenID Provider exited with status {process.returncode}")
        line = received.split(b"\n", 1)[0].decode(errors="replace").strip()
        if line != expected:
            raise RuntimeError(f"the OpenID Provider said {line!r}, expected {expected!r}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()

    def restart(self, keys: list[dict[str, Any]] | None = None) -> Self:
        """Stop and start again on the same port; with keys, sign with those from now on."""
        self.stop()
        if keys is not None:
            self.keys = keys
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class _Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """The page's forms (action, method, named inputs) and its visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self.text: list[str] = []
        self._form: _Form | None = None
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag in ("style", "script"):
            self._hidden_depth += 1
        elif tag == "form":
            self._form = _Form(attributes.get("action", ""), attributes.get("method", "get"))
            self.forms.append(self._form)
        elif (
            tag == "input"
            and self._form is not None
            and attributes.get("name")
            and attributes.get("type", "text") not in ("submit", "button", "image", "reset")
        ):
            self._form.fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script") and self._hidden_depth:
            self._hidden_depth -= 1
        elif tag == "form":
            self._form = None

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth and data.strip():
            self.text.append(data.strip())


def _parse(response: httpx.Response) -> _PageParser:
    parser = _PageParser()
    parser.feed(response.text)
    parser.close()
    return parser


def _page_text(response: httpx.Response, parser: _PageParser | None = None) -> str:
    parser = parser or _parse(response)
    text = " ".join(parser.text) or response.text
    return f"{response.status_code} at {response.url}: {text[:2000]}"


def _drive(
    client: httpx.Client, url: str, login: str, password: str, stop_at: str | None
) -> httpx.Response | str:
    """Follow redirects and submit forms (login, consent, device confirmation) like a browser.
    Returns the first redirect Location starting with stop_at (not requested), or else the
    first page without a form."""
    method, data = "GET", None
    submitted: set[tuple[str, tuple[str, ...]]] = set()
    for _ in range(MAX_STEPS):
        response = client.request(method, url, data=data)
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if stop_at is not None and location.startswith(stop_at):
                return location
            method, data, url = "GET", None, location
            continue
        parser = _parse(response)
        if response.status_code != 200:
            raise AssertionError(f"the sign-in failed: {_page_text(response, parser)}")
        if not parser.forms:
            return response
        form = parser.forms[0]
        fields = dict(form.fields)
        if "login" in fields:
            fields["login"] = login
            fields["password"] = password
        action = urljoin(str(response.url), form.action or str(response.url))
        signature = (action, tuple(sorted(fields)))
        if signature in submitted:
            rejected = (
                f"the login {login!r} was rejected" if "login" in fields else "a form came back"
            )
            raise AssertionError(f"{rejected}: {_page_text(response, parser)}")
        submitted.add(signature)
        method, data, url = form.method.upper(), fields, action
    raise AssertionError(f"the sign-in did not finish within {MAX_STEPS} requests, at {url}")


def sign_in(
    authorize_url: str, login: str, password: str = "any", *, redirect_uri_prefix: str
) -> str:
    """Sign in at the provider as `login` (a fresh cookie jar: no earlier session) and consent.

    Returns the callback URL the provider redirects to (starting with redirect_uri_prefix, with
    code and state, or error), without requesting it. Raises AssertionError with the page text if
    the flow ends anywhere else (an error page, or the login page again for an unknown login)."""
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        result = _drive(client, authorize_url, login, password, redirect_uri_prefix)
    if isinstance(result, str):
        return result
    raise AssertionError(
        f"the sign-in ended without a redirect to {redirect_uri_prefix}: {_page_text(result)}"
    )


def approve_device(verification_uri_complete: str, login: str, password: str = "any") -> None:
    """The device flow's user side: open verification_uri_complete, confirm the user code, sign
    in as `login` and consent. Raises AssertionError unless the provider reports success."""
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        result = _drive(client, verification_uri_complete, login, password, None)
    assert isinstance(result, httpx.Response)
    text = _page_text(result)
    if "success" not in text.lower():
        raise AssertionError(f"the device approval did not succeed: {text}")
