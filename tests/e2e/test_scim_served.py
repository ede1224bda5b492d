"""SCIM against a real `sekisho demo`: scim2-tester runs every check it has, and an IdP driven
by scim2-client deactivates member01 while their forward to the production console is live:
the forward is cut and says why."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import PatchOp, PatchOperation
from scim2_tester import Status, check_server

from demo_support import BIN, ROOT, running_demo
from support import free_port

SETUP = r"""
set -euo pipefail
as() { who=$1; shift; SEKISHO_CONFIG_DIR="$SEKISHO_DEMO_DIR/home/$who" sekisho "$@"; }
login() {
  sekisho demo password "$1" \
    | as "$1" login --user "$1" --password-stdin --otp "$(sekisho demo code "$1")"
}
login member01
login leader01
id=$(as member01 request create --template AddUserToGroup --group ProdMemberWorkGroup \
  --for 1h --reason "check the settlement batch" --info target="payment admin console" \
  --info change="read only" --info rollback="none" --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
as leader01 request approve "$id" --comment "OK"
"""


def scim_client(env: dict[str, str], idp: str = "okta") -> SyncSCIMClient:
    """The IdP's side: its token from `sekisho scim token`, then scim2-client over HTTP."""
    issued = subprocess.run(
        [str(BIN / "sekisho"), "scim", "token", idp, "--json"],
        env={**env, "SEKISHO_DATA_DIR": env["SEKISHO_DEMO_DIR"]},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    token = json.loads(issued.stdout)["token"]
    base = f"{env['SEKISHO_SERVER']}/scim/v2"
    client = SyncSCIMClient(
        httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    )
    client.discover()
    return client


@pytest.mark.realtime
def test_scim2_tester_passes_every_check_against_a_real_server(tmp_path: Path) -> None:
    with running_demo(tmp_path) as (env, _printed):
        results = check_server(scim_client(env))
    failed = [f"{r.title}: {r.reason}" for r in results if r.status is not Status.SUCCESS]
    assert len(results) > 100
    assert failed == []
    summary = Path(env["SEKISHO_DEMO_DIR"], "scim2-tester.txt")
    summary.write_text(f"{len(results)} checks, {len(failed)} not passed\n")


@pytest.mark.realtime
def test_the_idp_deactivating_member01_cuts_their_live_forward(tmp_path: Path) -> None:
    with running_demo(tmp_path) as (env, _printed):
        setup = subprocess.run(
            ["bash", "-c", SETUP], check=False, env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert setup.returncode == 0, setup.stdout + setup.stderr
        port = free_port()
        forward = start_forward(env, port)
        try:
            assert "<title>Payment admin console</title>" in console(env, port)
            idp = scim_client(env)
            served = idp.get_resource_model("User")  # User as the server describes it
            assert served is not None
            user = idp.create(served(user_name="member01@example.com", active=True))
            assert user.id is not None
            off = PatchOperation[served](op="replace", path="active", value=False)
            idp.modify(served, user.id, PatchOp[served](operations=[off]))
            said = wait_for_exit(forward)
        finally:
            forward.kill()
        assert "locked by sekisho:scim:okta: deactivated in the identity provider" in said
        with pytest.raises(httpx.HTTPError):
            console(env, port)


def start_forward(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    home = {**env, "SEKISHO_CONFIG_DIR": str(Path(env["SEKISHO_DEMO_DIR"], "home", "member01"))}
    forward = subprocess.Popen(
        [str(BIN / "sekisho"), "forward", "prod-admin-console", "--local-port", str(port)],
        env=home,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert forward.stdout is not None
    line = forward.stdout.readline()
    deadline = time.monotonic() + 30
    while not line.startswith("Forwarding") and time.monotonic() < deadline:
        assert forward.poll() is None, line
        line = forward.stdout.readline()
    assert line.startswith("Forwarding"), line
    return forward


def console(env: dict[str, str], port: int) -> str:
    ca = ssl.create_default_context(cafile=Path(env["SEKISHO_DEMO_DIR"], "pki", "ca.crt"))
    return httpx.get(f"https://localhost:{port}/", verify=ca, timeout=5).text


def wait_for_exit(forward: subprocess.Popen[str]) -> str:
    """What the forward printed until it stopped by itself (it must, within seconds)."""
    out, _ = forward.communicate(timeout=20)
    assert forward.returncode is not None
    return out
