"""Server-side commands: they act on the database directly, as sekisho itself.

The heavy imports (SQLAlchemy, Alembic, the services) happen inside the commands, so client
commands start fast.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from sekisho.cli.render import err, out, print_json, say
from sekisho.domain.actor import Actor
from sekisho.domain.errors import InvalidModel, ModelProblem

if TYPE_CHECKING:
    from sekisho.bootstrap import Core
    from sekisho.config import Settings
    from sekisho.store.db import Database

CLI = Actor.system("cli")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ModelOpt = Annotated[
    Path | None, typer.Option("--model", help="Access model YAML to load (validated first).")
]

user_app = typer.Typer(
    help="Users: enrol credentials (server side), show a user's access.", no_args_is_help=True
)
model_app = typer.Typer(help="The access model file: check it, picture it.", no_args_is_help=True)


def open_core(settings: Settings | None = None) -> Core:
    from sekisho.bootstrap import build_core, ensure_schema
    from sekisho.config import Settings

    core = build_core(settings or Settings())
    ensure_schema(core)
    return core


def load_model(core: Core, path: Path) -> None:
    text = _read_model(path)
    loaded = core.models.load(text, str(path), CLI)
    state = "loaded" if loaded.changed else "unchanged"
    out.print(say(f"model {path} {state} (version {loaded.id}, sha256 {loaded.sha256[:12]})"))


def _read_model(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidModel([ModelProblem(str(path), 0, "file", f"cannot read: {exc}")]) from exc


def init(model: ModelOpt = None) -> None:
    """Create or upgrade the database, then load the access model."""
    core = open_core()
    out.print(say(f"database ready: {_safe_url(core.db.url)}"))
    if model is not None:
        load_model(core, model)


def serve(
    model: ModelOpt = None,
    host: Annotated[str, typer.Option(help="Address the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The API's port.")] = 8470,
    gateway_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="The gateway's TLS port (SEKISHO_GATEWAY_PORT)."),
    ] = None,
    only: Annotated[
        str | None, typer.Option(help="Run just one part: api (with the scheduler) or gateway.")
    ] = None,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="JSON log lines.")] = False,
) -> None:
    """Run the API, the expiry scheduler and the gateway."""
    from sekisho import logs
    from sekisho.config import Settings
    from sekisho.server import Part
    from sekisho.server import serve as run_server

    if only is not None and only not in {p.value for p in Part}:
        raise typer.BadParameter("api or gateway", param_hint="--only")
    parts = frozenset({Part(only)}) if only else frozenset(Part)
    logs.configure(json=json_logs)
    core = open_core(
        Settings(gateway_port=gateway_port) if gateway_port is not None else Settings()
    )
    if model is not None:
        load_model(core, model)
    core.models.current()  # refuse to start without a model, with the reason
    if Part.API in parts:
        out.print(say(f"sekisho API on http://{host}:{port} (database {_safe_url(core.db.url)})"))
        links = core.settings.public_url
        out.print(say(f"web UI at http://{host}:{port}/ (links in notifications point to {links})"))
    if Part.GATEWAY in parts:
        out.print(say(f"sekisho gateway on {core.settings.gateway_address} (TLS)"))
    from sekisho.gateway.pki import PkiError

    try:
        run_server(core, host, port, parts)
    except PkiError as exc:  # TLS material unusable (a key others may read, another secret key)
        _fail(str(exc))


def sweep(json: JsonOpt = False) -> None:
    """One expiry pass (for cron): end due grants, retry failed endings, expire requests."""
    core = open_core()
    report = core.sweeper.run_due()
    data = {
        "expired": report.expired,
        "retried": report.retried,
        "still_failing": report.still_failing,
        "requests_expired": report.requests_expired,
        "runbooks_run": report.runbooks_run,
    }
    if json:
        print_json(data)
    else:
        out.print(
            say(
                f"ended {len(report.expired)} grant(s), confirmed {len(report.retried)} retried "
                f"ending(s), expired {len(report.requests_expired)} undecided request(s), "
                f"ran {len(report.runbooks_run)} runbook(s)"
            )
        )
        for grant_id, error in report.still_failing.items():
            out.print(
                say((f"grant #{grant_id} not yet removed by the provider:", "red"), f" {error}")
            )
    if report.still_failing:
        raise typer.Exit(1)


@user_app.command("enroll")
def enroll(
    name: Annotated[str, typer.Argument(help="A user named in the access model.")],
    json: JsonOpt = False,
) -> None:
    """Give a user a new password and TOTP secret. Shown once; old sessions end."""
    core = open_core()
    e = core.identity.enroll(CLI, name)
    if json:
        print_json(
            {
                "user": e.user,
                "password": e.password,
                "totp_secret": e.totp_secret,
                "otpauth_uri": e.otpauth_uri,
            }
        )
        return
    out.print(say((e.user, "bold"), " enrolled. These are shown once; hand them over privately."))
    out.print(say(f"  password:    {e.password}"))
    out.print(say(f"  TOTP secret: {e.totp_secret}"))
    out.print(say(f"  otpauth URI: {e.otpauth_uri}"))
    import segno

    out.print(say("Scan this with an authenticator app:"))
    buffer = io.StringIO()
    segno.make(e.otpauth_uri, error="m").terminal(out=buffer, compact=True)
    print(buffer.getvalue())


@model_app.command("check")
def check(file: Path) -> None:
    """Report every problem in a model file, with its line and the rule broken."""
    from sekisho.model import check_text

    problems = check_text(_read_model(file), str(file))
    if problems:
        raise InvalidModel(problems)
    out.print(say((f"{file}: ok", "green")))


@model_app.command("show")
def show(file: Path, json: JsonOpt = False) -> None:
    """Who can reach what: standing access vs only through an approved request."""
    from sekisho.model import load_file, reachability_json, render_reachability

    model = load_file(file)
    if json:
        print_json(reachability_json(model))
    else:
        out.print(render_reachability(model))


ca_app = typer.Typer(help="The gateway's certificate authority.", no_args_is_help=True)


@ca_app.command("export")
def export_ca(
    ctx: typer.Context,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the CA certificate clients use to verify the gateway (safe to distribute).

    With --server, the server's, from its API. Else this installation's: the CA its nodes
    share (in the database), or one its data directory has from before. Never makes one.
    """
    server = ctx.obj.get("server") if ctx.obj else None
    pem = _fetched_ca(server) if server else _existing_ca()
    if out_file is None:
        print(pem, end="")
        return
    try:
        out_file.write_text(pem)
    except OSError as exc:
        _fail(f"cannot write {out_file}: {exc.strerror or exc}")
    out.print(say(f"wrote {out_file}"))


def _fail(message: str) -> NoReturn:
    err.print(say(("error:", "red"), f" {message}"))
    raise typer.Exit(1)


def _existing_ca() -> str:
    from sqlalchemy.exc import SQLAlchemyError

    from sekisho.config import Settings
    from sekisho.gateway.pki import PkiError
    from sekisho.gateway.setup import published_ca

    settings = Settings()
    db = None
    try:
        db = _existing_database(settings)
        pem = published_ca(settings, db)
    except PkiError as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        url = _safe_url(settings.resolved_database_url)
        _fail(f"cannot read the gateway CA from the database {url} ({type(exc).__name__})")
    finally:
        if db is not None:
            db.dispose()
    if pem is not None:
        return pem
    if settings.gateway_cert is not None:
        _fail("the gateway uses a brought certificate: set SEKISHO_GATEWAY_CA to its CA")
    _fail(
        f"no sekisho CA yet (database {_safe_url(settings.resolved_database_url)}, data "
        f"directory {settings.data_dir}): the first `sekisho serve` creates it; or pass "
        "--server URL to fetch your server's"
    )


def _existing_database(settings: Settings) -> Database | None:
    """The database, if it exists and has the shared CA's table: opening it creates nothing."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from sekisho.store.db import Database

    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        path = url.database
        if not path or path == ":memory:" or not Path(path).exists():
            return None  # opening it would create the file
    db = Database(settings.resolved_database_url)
    if not inspect(db.engine).has_table("certificate_authorities"):
        db.dispose()
        return None  # never migrated this far: no gateway of this version has run on it
    return db


def _fetched_ca(server: str) -> str:
    from cryptography import x509

    from sekisho.cli.client import Client
    from sekisho.domain.hosts import is_loopback_url

    if not (server.startswith("https://") or is_loopback_url(server)):
        # Anyone on the path could swap the certificate: a CA fetched so proves nothing.
        _fail(f"{server} is plain HTTP to another host: fetch the CA over https:// only")
    pem = Client(server).get("/gateway").get("ca_pem")
    if not isinstance(pem, str) or not pem:
        _fail(f"the server at {server} has no gateway CA yet (no gateway has started)")
    try:
        x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeError):
        _fail(f"the server at {server} sent something that is not a PEM certificate")
    return pem


def register(app: typer.Typer) -> None:
    app.add_typer(ca_app, name="ca")
    app.add_typer(user_app, name="user")
    app.add_typer(model_app, name="model")
    app.command()(init)
    app.command()(serve)
    app.command()(sweep)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
