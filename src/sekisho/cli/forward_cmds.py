"""`sekisho forward` and `sekisho session`: governed port forwarding, from the user's side."""

from __future__ import annotations

import ipaddress
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from sekisho.cli.client import ApiError, Client, Unreachable
from sekisho.cli.render import emit, err, literal, out, say, status, when
from sekisho.domain.errors import InvalidInput
from sekisho.domain.hosts import is_loopback_url

if TYPE_CHECKING:
    from sekisho.gateway.client import Forwarder, SessionInfo

session_app = typer.Typer(help="Forwarding sessions: list them, kill one.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _client(ctx: typer.Context) -> Client:
    return Client(ctx.obj.get("server") if ctx.obj else None)


def _gateway_and_ca(
    api: Client, gateway: str | None, ca: Path | None
) -> tuple[tuple[str, int], str, Path | str]:
    info = api.get("/gateway")
    address = gateway or info["address"]
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidInput.one("gateway", "host_port", f"{address!r} is not HOST:PORT")
    host = host.strip("[]")
    if ca is not None:
        return (host, int(port)), host, ca
    if info.get("ca_pem") and is_loopback_url(api.server):
        return (host, int(port)), host, str(info["ca_pem"])  # fetched over loopback: safe
    raise InvalidInput.one(
        "ca",
        "required",
        "pass --ca FILE with the gateway's CA (your admin runs `sekisho ca export`)",
    )


def forward(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A target in the access model.")],
    local_port: Annotated[
        int, typer.Option("--local-port", min=0, max=65535, help="0: any free port.")
    ] = 0,
    bind: Annotated[str, typer.Option(help="Local address to listen on.")] = "127.0.0.1",
    gateway: Annotated[
        str | None, typer.Option(envvar="SEKISHO_GATEWAY", help="HOST:PORT (default: ask)")
    ] = None,
    ca: Annotated[
        Path | None,
        typer.Option(envvar="SEKISHO_CA", help="CA certificate to verify the gateway with."),
    ] = None,
) -> None:
    """Carry a local port to TARGET through the gateway, while your access lasts."""
    from sekisho.gateway.client import Forwarder
    from sekisho.gateway.pki import client_context

    api = _client(ctx)
    if not api.token:
        raise InvalidInput.one("token", "required", "log in first: sekisho login --user NAME")
    local = _local_address(bind)
    address, server_name, ca_source = _gateway_and_ca(api, gateway, ca)
    user = str(api.get("/me")["user"])
    forwarder = Forwarder(
        address,
        client_context(ca_source),
        api.token,
        target,
        server_hostname=server_name,
        bind=local,
        local_port=local_port,
        still_allowed=_access_check(api, user, target),
        notice=lambda message: err.print(literal(message, "yellow")),
    )
    try:  # the local address first: if it cannot be had, no session is opened
        forwarder.listen()
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        hint = " (pick another --local-port, or 0 for any free one)" if local_port else ""
        err.print(say(("error:", "red"), f" cannot listen on {local}:{local_port}: {why}{hint}"))
        raise typer.Exit(1) from None
    session = _open(forwarder)
    host, port = forwarder.start()
    _announce(session.__dict__, target, host, port, address)
    _wait(forwarder)
    if forwarder.access_ended:
        at = f" at {when(forwarder.ended_at)}" if forwarder.ended_at else ""
        out.print(say(("access ended", "bold red"), f"{at}: {forwarder.end_reason}"))
    else:
        out.print(say(f"forward stopped ({forwarder.end_reason})"))


def _local_address(bind: str) -> str:
    if bind == "localhost":
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(bind))
    except ValueError:
        raise InvalidInput.one(
            "bind", "ip_address", f"{bind[:60]!r} is not an IP address (e.g. 127.0.0.1 or ::1)"
        ) from None


def _open(forwarder: Forwarder) -> SessionInfo:
    """The session, or exit 1 with the gateway's refusal (and the way in) or why not."""
    from sekisho.gateway.client import GatewayUnreachable, Refused

    try:
        return forwarder.open()
    except Refused as refused:
        forwarder.close("refused")
        err.print(say(("refused:", "red"), f" {refused.reason}"))
        for route in refused.routes:
            err.print(
                say(
                    f"  request access: sekisho request create --template {route['template']} "
                    f"--group {route['group']} --for 2h --reason ..."
                )
            )
    except GatewayUnreachable as exc:
        forwarder.close("unreachable")
        err.print(say(("error:", "red"), f" {exc}"))
    raise typer.Exit(1)


def _access_check(api: Client, user: str, target: str) -> Callable[[], str | None]:
    """Asks the API whether access to `target` still holds: None if it does (or the API
    cannot say), else why not."""

    def still_allowed() -> str | None:
        query = {"user": user, "verb": "connect", "object": target}
        try:
            answer = api.post("/decisions", json=query)
        except Unreachable:
            return None
        except ApiError as refused:
            return f"the API says: {refused}" if refused.status in (401, 403) else None
        return None if answer.get("allowed") else str(answer.get("reason") or "access ended")

    return still_allowed


def _wait(forwarder: Forwarder) -> None:
    """Until the forward ends; Ctrl-C ends it from here."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while not forwarder.wait(0.2):
            if stop.is_set():
                forwarder.close()
    finally:
        signal.signal(signal.SIGINT, previous)


def _announce(
    session: dict[str, Any], target: str, host: str, port: int, gateway: tuple[str, int]
) -> None:
    info = session["target"]
    name = info.get("dns_name") or target
    out.print(
        say(
            "Forwarding ",
            (f"{host}:{port}", "bold"),
            f" -> {target} ({name}:{info.get('port')}) "
            f"through the gateway at {gateway[0]}:{gateway[1]}",
        )
    )
    out.print(
        say(
            f"Access: {session['via']}, until {when(session['expires_at'])} "
            f"(session #{session['id']}; it ends then: {session['ends_because']})"
        )
    )
    if info.get("protocol") in ("https", "http"):
        scheme = info["protocol"]
        local = "localhost" if host in ("127.0.0.1", "::1") else host
        out.print(say("Open ", (f"{scheme}://{local}:{port}/", "bold"), " in your browser"))
        if info.get("dns_name"):
            out.print(
                say(
                    f"  or {scheme}://{info['dns_name']}:{port}/ with "
                    f"`{host} {info['dns_name']}` in /etc/hosts"
                )
            )
        if scheme == "https":
            out.print(say("  (its certificate comes from the sekisho CA: `sekisho ca export`)"))
    out.print(say("Press Ctrl-C to stop."))


@session_app.command("list")
def list_sessions(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Only live sessions.")] = False,
    json: JsonOpt = False,
) -> None:
    """Forwarding sessions, newest first (auditors: everyone's)."""
    data = _client(ctx).get("/sessions", params={"active": active})
    emit(data, json, sessions_table, empty="no sessions")


@session_app.command("kill")
def kill(
    ctx: typer.Context,
    session_id: Annotated[int, typer.Argument(metavar="ID", min=1)],
    reason: Annotated[str, typer.Option(help="Why; on record and shown to the user.")] = "",
    json: JsonOpt = False,
) -> None:
    """End a live session now (admins; or your own)."""
    data = _client(ctx).post(f"/sessions/{session_id}/kill", json={"reason": reason})
    emit(data, json, killed_message)


def killed_message(s: dict[str, Any]) -> Text:
    """What is true when the kill returns: on record, and cut or about to be. As literal
    text: the reason is someone's words, never markup."""
    if s["status"] != "active":
        return Text(f"session #{s['id']} of {s['user']} ended: {s['end_reason']}")
    return Text(
        f"session #{s['id']} of {s['user']}: kill recorded (by {s['killed_by']}); "
        "the gateway carrying it cuts it within a second"
    )


def sessions_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Sessions", title_justify="left")
    for column in ("ID", "Status", "User", "Target", "Via", "Started", "Ended", "Bytes up/down"):
        table.add_column(column, overflow="fold")
    for s in rows:
        ended = when(s["ended_at"]) if s["ended_at"] else "-"
        if s.get("end_reason"):
            ended += f" ({s['end_reason']})"
        table.add_row(
            str(s["id"]),
            status(s["status"]),
            literal(s["user"]),
            literal(s["target"]),
            literal(s["via"]),
            when(s["started_at"]),
            literal(ended),
            f"{s['bytes_up']:,} / {s['bytes_down']:,} in {s['connections']} conn.",
        )
    return table


def register(app: typer.Typer) -> None:
    app.command()(forward)
    app.add_typer(session_app, name="session")
