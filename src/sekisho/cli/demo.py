"""`sekisho demo`: the seed's scenario on a laptop, SQLite and the example model, nothing else.

It starts a fresh sekisho in ./.demo, enrols every user of examples/jump-account.yaml (their
credentials go to .demo/credentials.json, mode 0600: this is a demo), prints the walkthrough,
and serves until Ctrl-C. `sekisho demo password USER` and `sekisho demo code USER` hand a
demo user's password and current TOTP code to the walkthrough, as an authenticator app would.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pyotp
import typer
from rich.markup import escape
from rich.text import Text

from sekisho.cli.render import out
from sekisho.defaults import DEFAULT_PORT
from sekisho.domain.actor import Actor
from sekisho.domain.errors import InvalidInput
from sekisho.domain.text import visible

DEMO = Actor.system("demo")
MODEL_NAME = "jump-account.yaml"

demo_app = typer.Typer(
    help="Run the seed's scenario locally: SQLite, the example model, enrolled demo users.",
    invoke_without_command=True,
)

DirOpt = Annotated[
    Path, typer.Option("--dir", envvar="SEKISHO_DEMO_DIR", help="Where the demo keeps its data.")
]


def find_example_model() -> Path:
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base / "examples" / MODEL_NAME
        if candidate.is_file():
            return candidate
    raise InvalidInput.one("model", "not_found", f"examples/{MODEL_NAME} not found: pass --model")


def _credentials(directory: Path) -> dict[str, dict[str, str]]:
    path = directory / "credentials.json"
    try:
        data: dict[str, dict[str, str]] = json.loads(path.read_text())
    except OSError as exc:
        raise InvalidInput.one(
            "dir", "no_demo", f"no demo in {directory}: run `sekisho demo` first"
        ) from exc
    return data


def _user(directory: Path, user: str) -> dict[str, str]:
    found = _credentials(directory).get(user)
    if found is None:
        raise InvalidInput.one("user", "unknown_user", f"{user!r} is not a demo user")
    return found


@demo_app.callback()
def demo(
    ctx: typer.Context,
    directory: DirOpt = Path(".demo"),
    model: Annotated[Path | None, typer.Option(help="Model file (default: the example).")] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="The API's port.")] = DEFAULT_PORT,
    gateway_port: Annotated[int, typer.Option(min=1, max=65535)] = DEFAULT_PORT + 1,
    keep: Annotated[bool, typer.Option(help="Keep the previous demo's data.")] = False,
) -> None:
    """Start a fresh demo (API, scheduler, gateway, a production console) and guide you."""
    if ctx.invoked_subcommand is not None:
        return
    from sekisho import logs
    from sekisho.bootstrap import build_core, ensure_schema
    from sekisho.config import Settings
    from sekisho.demo_console import DemoConsole
    from sekisho.server import serve

    model = model or find_example_model()
    if directory.exists() and not keep:
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.pop("SEKISHO_DATABASE_URL", None)  # the demo is SQLite in its own directory
    settings = Settings(
        data_dir=directory.resolve(),
        public_url=f"http://127.0.0.1:{port}",
        database_url=None,
        gateway_host="127.0.0.1",
        gateway_port=gateway_port,
    )
    logs.configure()
    core = build_core(settings)
    ensure_schema(core)
    core.models.load(model.read_text(encoding="utf-8"), str(model), DEMO)
    creds = _credentials(directory) if keep and (directory / "credentials.json").exists() else {}
    for user in core.models.model().users:
        if user.name not in creds:
            e = core.identity.enroll(DEMO, user.name)
            creds[user.name] = {"password": e.password, "totp_secret": e.totp_secret}
    path = directory / "credentials.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(creds, handle, indent=2)
    console = _production_console(core.models.model(), directory.resolve(), DemoConsole)
    out.print(walkthrough(port, directory))
    try:
        serve(core, "127.0.0.1", port)
    finally:
        if console is not None:
            console.stop()


def _production_console(model: Any, data_dir: Path, console_class: Any) -> Any:
    """The seed's production admin console, as the model's HTTPS target (only via the gateway
    in real life; on one laptop it is a local port)."""
    target = model.target("prod-admin-console")
    if target is None:
        return None
    console = console_class(data_dir, host=target.host, port=target.port)
    console.start()
    return console


@demo_app.command("password")
def password(user: str, directory: DirOpt = Path(".demo")) -> None:
    """A demo user's password (for piping into `sekisho login --password-stdin`)."""
    print(_user(directory, user)["password"])


@demo_app.command("code")
def code(
    user: str,
    directory: DirOpt = Path(".demo"),
    following: Annotated[
        bool, typer.Option("--next", help="The code after it (a code is good once).")
    ] = False,
) -> None:
    """A demo user's current TOTP code, as their authenticator app would show it."""
    totp = pyotp.TOTP(_user(directory, user)["totp_secret"])
    later = timedelta(seconds=totp.interval) if following else timedelta(0)
    print(totp.at(datetime.now(UTC) + later))


def walkthrough(port: int, directory: Path) -> Text:
    """Our own guide, styled with markup; the directory is the reader's, shown as text."""
    return Text.from_markup(WALKTHROUGH.format(port=port, dir=escape(visible(str(directory)))))


WALKTHROUGH = """
[bold]sekisho demo[/] is running at http://127.0.0.1:{port} (SQLite in {dir}/, model
examples/jump-account.yaml). Every user is enrolled; passwords and TOTP secrets are in
{dir}/credentials.json. The same steps run as a script: [bold]bash examples/walkthrough.sh[/]

In a second terminal, from this directory ([dim]. .venv/bin/activate[/] first):

  export SEKISHO_SERVER=http://127.0.0.1:{port}
  # each person keeps their own token, as on their own laptop
  as() {{ who=$1; shift; SEKISHO_CONFIG_DIR={dir}/home/$who sekisho "$@"; }}
  # log in with password + TOTP code (MFA): `sekisho demo code` plays the authenticator app
  login() {{ sekisho demo password $1 | as $1 login --user $1 --password-stdin \\
             --otp "$(sekisho demo code $1)"; }}

  [bold]1. member01 cannot switch into production[/]
  login member01
  as member01 can member01 assume prod/Prod_MemberRole      [dim]# DENIED, names the template[/]

  [bold]2. member01 files a change request until a planned end[/]
  as member01 request create --template AddUserToGroup --group ProdMemberWorkGroup \\
      --for 2m --reason "Rotate the payment console API key" \\
      --info target="payment admin console" --info change="rotate the merchant key" \\
      --info rollback="restore the previous key"
  [dim]# or the seed's TTL form, read in Asia/Tokyo:[/]
  [dim]#   --until $(TZ=Asia/Tokyo date -d '+2 min' +%Y%m%d%H%M)[/]

  [bold]3. leader01 (ChangeApprovalGroup) approves with a comment[/]
  login leader01
  as leader01 request list --to-approve
  as leader01 request approve 1 --comment "OK, go ahead"
  as leader01 request show 1                                [dim]# the timeline, step by step[/]

  [bold]4. member01 now can, until the end time[/]
  as member01 can member01 assume prod/Prod_MemberRole      [dim]# ALLOWED via grant #1[/]
  as member01 whoami
  as member01 user show member01                            [dim]# membership + TTL tag[/]

  [bold]4b. member01 opens the production admin console in their own browser[/]
  as member01 forward prod-admin-console --local-port 18443   [dim]# keep it running[/]
  [dim]# then open https://localhost:18443/ (trust the CA: sekisho ca export, or accept the
  # warning); from a shell: curl --cacert {dir}/pki/ca.crt https://localhost:18443/[/]

  [bold]5. two minutes after the approval the grant ends by itself[/]
  [dim]# the forward prints "access ended ..." and the console page stops working[/]
  as member01 can member01 assume prod/Prod_MemberRole      [dim]# DENIED again[/]
  as member01 grant list

  [bold]6. the auditor answers: who entered production, when, for which change?[/]
  login auditor01
  as auditor01 audit list
  as auditor01 audit verify                                 [dim]# the hash chain holds[/]

Press Ctrl-C here to stop the demo.
"""


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")
