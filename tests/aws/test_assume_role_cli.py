"""`sekisho assume-role` end to end: the CLI, the API and STS (moto), and a console URL."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import uvicorn
from aws_support import REGION, World, aws_model_text

from sekisho.bootstrap import Core
from sekisho.domain.actor import Actor
from sekisho.server import build_app
from support import LEADER, MEMBER, People, draft, free_port

BIN = Path(sys.executable).parent


class Federation:
    """Stands in for AWS's sign-in federation endpoint: hands out a token for a session."""

    def __init__(self) -> None:
        self.sessions: list[dict[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                outer.sessions.append(json.loads(query["Session"][0]))
                body = json.dumps({"SigninToken": "token-123"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/federation"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def federation() -> Iterator[Federation]:
    fake = Federation()
    yield fake
    fake.server.shutdown()


@pytest.fixture
def api_url(aws_core: Core, world: World, federation: Federation) -> Iterator[str]:
    aws_core.models.load(
        aws_model_text(world.moto.url, federation.url), "aws.yaml", Actor.system("test")
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_app(aws_core), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def run(api_url: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEKISHO_SERVER": api_url, "SEKISHO_TOKEN": token}
    return subprocess.run(
        [str(BIN / "sekisho"), *args], capture_output=True, text=True, env=env, check=False
    )


def test_assume_role_formats_and_console(
    aws_core: Core, world: World, api_url: str, federation: Federation
) -> None:
    token = People(aws_core).token("member01")
    refused = run(api_url, token, "assume-role", "prod/Prod_MemberRole")
    assert refused.returncode == 1
    assert "no active grant" in refused.stderr

    request = aws_core.workflow.file(MEMBER, draft(duration="1h"))
    aws_core.workflow.approve(LEADER, request.id, "ok")

    process = run(
        api_url, token, "assume-role", "prod/Prod_MemberRole", "--format", "credential-process"
    )
    assert process.returncode == 0, process.stderr
    creds = json.loads(process.stdout)
    assert creds["Version"] == 1
    sts = boto3.client(
        "sts",
        region_name=REGION,
        endpoint_url=world.moto.url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert sts.get_caller_identity()["Arn"].endswith("/Prod_MemberRole/member01=req1")

    env_format = run(api_url, token, "assume-role", "prod/Prod_MemberRole")
    lines = env_format.stdout.splitlines()
    assert [line.split("=")[0] for line in lines] == [
        "export AWS_ACCESS_KEY_ID",
        "export AWS_SECRET_ACCESS_KEY",
        "export AWS_SESSION_TOKEN",
        "export AWS_CREDENTIAL_EXPIRATION",
    ]
    assert "member01=req1" in env_format.stderr  # who and why, beside the secrets

    console = run(api_url, token, "assume-role", "prod/Prod_MemberRole", "--console")
    assert console.returncode == 0, console.stderr
    assert "SigninToken=token-123" in console.stderr
    key_id = console.stdout.splitlines()[0].split("=", 1)[1]
    assert federation.sessions[-1]["sessionId"] == key_id  # the console session is these

    not_for_console = run(api_url, token, "assume-role", "prod/Prod_ReadOnlyRole", "--console")
    assert not_for_console.returncode == 1
    assert "console" in not_for_console.stderr
