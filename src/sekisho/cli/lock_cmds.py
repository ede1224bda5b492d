"""`sekisho lock ...` and `sekisho unlock`: the kill switch, as the logged-in user."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from sekisho.cli.client_cmds import JsonOpt, client
from sekisho.cli.render import emit, literal, out, print_json, say, when

lock_app = typer.Typer(
    help="Lock a user, target, group or role now (what it covers ends), or list the locks.",
    no_args_is_help=True,
)

Reason = Annotated[
    str, typer.Option("--reason", "-r", help="Why (required): every refusal quotes it.")
]
For = Annotated[
    str | None, typer.Option("--for", help="How long, e.g. 2h or 1d (default: until unlocked).")
]
Until = Annotated[
    str | None, typer.Option(help="ISO 8601 end; without a zone, in the model's time zone.")
]


def _place(
    ctx: typer.Context,
    kind: str,
    subject: str,
    reason: str,
    lasting: str | None,
    until: str | None,
    json: bool,
) -> None:
    body: dict[str, Any] = {"kind": kind, "subject": subject, "reason": reason}
    if lasting is not None:
        body["for"] = lasting
    if until is not None:
        body["until"] = until
    placed = client(ctx).post("/locks", json=body)
    if json:
        print_json(placed)
        return
    _print_placed(placed)
    if placed["errors"]:
        raise typer.Exit(1)


def _print_placed(placed: dict[str, Any]) -> None:
    lock = placed["lock"]
    ends = f"until {when(lock['until'])}" if lock["until"] else "until unlocked"
    out.print(
        say(("LOCKED", "red bold"), " ", literal(lock["subject"], "bold"), f" (lock #{lock['id']}")
        + say(f", {ends}): ", literal(lock["message"]))
    )
    ended = placed["grants_ended"] + placed["grants_pending"]
    if ended:
        out.print(say("  ended grants ", ", ".join(f"#{g}" for g in ended)))
    if placed["tokens_revoked"]:
        out.print(say(f"  ended {placed['tokens_revoked']} login(s)"))
    if placed["requests_closed"]:
        closed = ", ".join(f"#{r}" for r in placed["requests_closed"])
        out.print(say("  closed requests ", closed))
    for line in placed["role_sessions"]:
        out.print(say("  ", literal(line)))
    for line in placed["errors"]:
        out.print(
            say(("  not confirmed yet (retried; access stays denied): ", "yellow"), literal(line))
        )


@lock_app.command("user")
def lock_user(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    reason: Reason,
    lasting: For = None,
    until: Until = None,
    json: JsonOpt = False,
) -> None:
    """Lock a user now: logins, grants, sessions and role sessions end; requests, approvals
    and connections are refused, with the reason."""
    _place(ctx, "user", name, reason, lasting, until, json)


@lock_app.command("target")
def lock_target(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="TARGET")],
    reason: Reason,
    lasting: For = None,
    until: Until = None,
    json: JsonOpt = False,
) -> None:
    """Lock a target now: nobody connects; grants of groups that reach it end."""
    _place(ctx, "target", target, reason, lasting, until, json)


@lock_app.command("group")
def lock_group(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(metavar="GROUP")],
    reason: Reason,
    lasting: For = None,
    until: Until = None,
    json: JsonOpt = False,
) -> None:
    """Lock a group now: its permissions count for nothing; its grants end."""
    _place(ctx, "group", group, reason, lasting, until, json)


@lock_app.command("role")
def lock_role(
    ctx: typer.Context,
    role: Annotated[str, typer.Argument(metavar="ACCOUNT/ROLE")],
    reason: Reason,
    lasting: For = None,
    until: Until = None,
    json: JsonOpt = False,
) -> None:
    """Lock a role now: nobody assumes it; grants of groups that reach it end."""
    _place(ctx, "role", role, reason, lasting, until, json)


@lock_app.command("list")
def list_locks(
    ctx: typer.Context,
    everything: Annotated[bool, typer.Option("--all", help="Removed and run out too.")] = False,
    json: JsonOpt = False,
) -> None:
    """The locks in force, newest first (those who may lock, auditors and admins)."""
    found = client(ctx).get("/locks", params={"all": everything})
    emit(found, json, locks_table, empty="no locks in force")


def unlock(
    ctx: typer.Context,
    lock_id: Annotated[int, typer.Argument(metavar="ID", min=1)],
    json: JsonOpt = False,
) -> None:
    """Lift a lock early. Nothing it ended comes back: access is asked for again."""
    removed = client(ctx).delete(f"/locks/{lock_id}")
    emit(removed, json, lambda lock: f"lock #{lock['id']} on {lock['subject']} removed")


def locks_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Locks", title_justify="left")
    for column in ("ID", "Kind", "Subject", "Reason", "By", "Since", "Until", "State"):
        table.add_column(column, overflow="fold")
    for lock in rows:
        if lock["in_force"]:
            state = say(("in force", "red"))
        elif lock["removed_at"]:
            state = say(f"removed by {lock['removed_by']}")
        else:
            state = say(("ran out", "dim"))
        table.add_row(
            str(lock["id"]),
            lock["kind"],
            literal(lock["subject"]),
            literal(lock["reason"]),
            literal(lock["created_by"]),
            when(lock["created_at"]),
            when(lock["until"]) if lock["until"] else "removed",
            state,
        )
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(lock_app, name="lock")
    app.command()(unlock)
