"""The `sekisho` command.

Server-side commands (init, serve, sweep, user, model) act on the database named by
SEKISHO_DATABASE_URL. Client commands talk to the server at --server / SEKISHO_SERVER as the
logged-in user. Exit codes: 0 done, 1 refused or invalid input, 2 usage error.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sekisho.cli import (
    aws_cmds,
    client_cmds,
    forward_cmds,
    lock_cmds,
    notify_cmds,
    scim_cmds,
    server_cmds,
)
from sekisho.cli import demo as demo_cmds
from sekisho.cli.client import ApiError, Unreachable
from sekisho.cli.render import err, say
from sekisho.domain.errors import InvalidInput, InvalidModel, SekishoError

app = typer.Typer(
    name="sekisho",
    help="Just-in-time production access: request, approve, grant for a bounded time, audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", envvar="SEKISHO_SERVER", help="sekisho server URL for client commands."
        ),
    ] = None,
) -> None:
    ctx.obj = {"server": server}


server_cmds.register(app)
client_cmds.register(app)
lock_cmds.register(app)
server_cmds.user_app.command("show")(client_cmds.show_user)
forward_cmds.register(app)
aws_cmds.register(app, server_cmds.model_app)
demo_cmds.register(app)
notify_cmds.register(app)
scim_cmds.register(app)


ERROR = ("error:", "red")


def report(error: BaseException) -> int:
    """Say what went wrong in one place; return the exit code.

    What the server says quotes what was typed: it is printed as text, never as markup."""
    if isinstance(error, ApiError):
        problem = error.problem
        items = [
            (str(i.get("field")), str(i.get("message")), str(i.get("rule")))
            for i in problem.get("errors") or []
        ]
        _field_problems(str(problem.get("title", "refused")), items, f"{error}")
        return 1
    if isinstance(error, InvalidInput):
        _field_problems("invalid input", [(p.field, p.message, p.rule) for p in error.problems])
        return 1
    if isinstance(error, InvalidModel):
        err.print(say(ERROR, f" the access model has {len(error.problems)} problem(s)"))
        for problem_line in error.problems:
            err.print(say(f"  {problem_line}"))
        return 1
    if isinstance(error, SekishoError):
        err.print(say(ERROR, f" {error.title}: {error.message}"))
        return 1
    if isinstance(error, Unreachable):
        err.print(say(ERROR, f" {error}"))
        return 1
    raise error


def _field_problems(title: str, items: list[tuple[str, str, str]], detail: str = "") -> None:
    """One problem on one line; several, each on its own line under the title."""
    if len(items) == 1:
        field, message, rule = items[0]
        err.print(say(ERROR, f" {title}: {field}: {message} ", (f"({rule})", "dim")))
        return
    err.print(say(ERROR, f" {title}: {detail}" if not items and detail else f" {title}"))
    for field, message, rule in items:
        err.print(say(f"  {field}: {message} ", (f"({rule})", "dim")))


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        err.print(say("aborted"))
        sys.exit(1)
    except typer.TyperException as usage:  # the command line itself was wrong: exit 2
        show = getattr(usage, "show", None)
        if callable(show):
            show()
        else:
            err.print(say(f"error: {usage}"))
        sys.exit(int(getattr(usage, "exit_code", 2)))
    except (ApiError, SekishoError, Unreachable) as error:
        sys.exit(report(error))
    sys.exit(code if isinstance(code, int) else 0)
