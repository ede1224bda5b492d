"""`make demo-sso`: the demo, with sign-in through an OpenID Provider running beside it.

Starts the test suite's OpenID Provider (oidc-provider from tests/oidc, Node 20.18+ and npm),
with one account per user of the example model (any password works at its login page), then
`sekisho demo` with the example model plus an `identity` section naming that provider. Open
http://127.0.0.1:8470/ and press "Sign in with Demo IdP". Ctrl-C stops both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import oidc_support  # noqa: E402 - from tests/, found through the line above

PORT = 8470
SECRET_ENV = "SEKISHO_DEMO_OIDC_CLIENT_SECRET"


def main() -> int:
    missing = oidc_support.provider_available()
    if missing is not None:
        print(f"make demo-sso needs the OpenID Provider: {missing}", file=sys.stderr)
        return 1
    example = (ROOT / "examples" / "jump-account.yaml").read_text(encoding="utf-8")
    users = yaml.safe_load(example)["users"]
    accounts = {
        u["name"]: {"email": u.get("email"), "name": u.get("display_name", u["name"]), "groups": []}
        for u in users
    }
    secret = os.urandom(24).hex()
    client = {
        "client_id": "sekisho-demo",
        "client_secret": secret,
        "redirect_uris": [f"http://127.0.0.1:{PORT}/signin/oidc/callback"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    with (
        tempfile.TemporaryDirectory(prefix="sekisho-demo-idp-") as scratch,
        oidc_support.TestProvider(Path(scratch), [client], accounts, amr=["pwd"]) as idp,
    ):
        model = Path(scratch) / "jump-account-sso.yaml"
        model.write_text(example + _identity(idp.issuer), encoding="utf-8")
        print(f"OpenID Provider (demo) at {idp.issuer}: sign in as any demo user, any password")
        command = [str(Path(sys.executable).parent / "sekisho"), "demo", "--model", str(model)]
        environ = {**os.environ, SECRET_ENV: secret}
        try:
            return subprocess.call(command, env=environ, cwd=ROOT)  # noqa: S603 - our own CLI
        except KeyboardInterrupt:
            return 0


def _identity(issuer: str) -> str:
    return (
        "\nidentity:\n  oidc:\n"
        f"    issuer: {issuer}\n"
        "    client_id: sekisho-demo\n"
        f"    client_secret_env: {SECRET_ENV}\n"
        "    display_name: Demo IdP\n"
    )


if __name__ == "__main__":
    sys.exit(main())
