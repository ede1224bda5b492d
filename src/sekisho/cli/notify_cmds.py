"""`sekisho notify ...`: server-side commands for the notification outbox and its channels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sekisho.cli.render import err, literal, out, print_json, say, when
from sekisho.cli.server_cmds import CLI, JsonOpt, open_core

if TYPE_CHECKING:
    from sekisho.notify.status import ChannelStatus
    from sekisho.services.dispatcher import DispatchReport

notify_app = typer.Typer(
    help="Notifications: deliver the outbox, see each channel's state, send a test.",
    no_args_is_help=True,
)


@notify_app.command("dispatch")
def dispatch(json: JsonOpt = False) -> None:
    """One delivery pass over everything due (`sekisho serve` does this by itself)."""
    from sekisho import logs

    logs.configure()  # to stderr: stdout may be --json
    core = open_core()
    report = core.new_dispatcher().run_pass()
    _print_report(report, json)
    if report.failed or report.gave_up:
        raise typer.Exit(1)


@notify_app.command("status")
def status(json: JsonOpt = False) -> None:
    """Per channel: pending, failing, delivered, given up, and the last error. Exit 1 when a
    channel is failing or cannot send."""
    core = open_core()
    channels = core.outbox.status(CLI)
    if json:
        print_json([_status_json(c) for c in channels])
    elif not channels:
        out.print(say("no notification channels in the model"))
    else:
        from rich.table import Table
        from rich.text import Text

        table = Table("channel", "type", "pending", "failing", "delivered", "gave up", "state")
        for c in channels:
            state = Text("ok", "green") if c.healthy else Text("failing", "red")
            table.add_row(
                literal(c.name),
                literal(c.type or "-"),
                str(c.pending),
                str(c.failing),
                str(c.delivered),
                str(c.failed),
                state,
            )
        out.print(table)
        for c in channels:
            for problem in c.problems:
                out.print(say((f"{c.name}:", "red"), f" {problem}"))
            if c.last_error:
                out.print(say(f"{c.name}: last error {when(c.last_error_at)}: {c.last_error}"))
            if c.oldest_pending_at and c.failing:
                out.print(say(f"{c.name}: oldest undelivered since {when(c.oldest_pending_at)}"))
    if any(not c.healthy for c in channels):
        raise typer.Exit(1)


@notify_app.command("test")
def send_test(
    channel: Annotated[str, typer.Argument(help="A channel named in the model.")],
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="E-mail address (personal e-mail channels; default: admins)."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Send a test message through CHANNEL now, and say what the channel answered."""
    import logging

    from sekisho import logs

    logs.configure(level=logging.ERROR)  # the line printed below says what a warning would
    core = open_core()
    ids = core.outbox.test(channel, to)
    report = core.new_dispatcher().deliver(ids)
    if json:
        _print_report(report, json)
    else:
        _print_test(channel, ids, report)
    if len(report.delivered) != len(ids):
        raise typer.Exit(1)


def _print_test(channel: str, ids: list[int], report: DispatchReport) -> None:
    """One line per test message: delivered, or why not (the error is safe to show)."""
    for notification_id in ids:
        which = f"channel {channel}" + (f" (message #{notification_id})" if len(ids) > 1 else "")
        if notification_id in report.delivered:
            out.print(f"{which}: delivered the test message", markup=False)
            continue
        if notification_id in report.failed:
            said = f"not delivered: {report.failed[notification_id]} (retried with backoff)"
        elif notification_id in report.gave_up:
            said = "not delivered, given up"
        else:
            said = "not sent: the channel failed first (retried with it)"
        err.print(f"{which}: {said}", markup=False)


def _print_report(report: DispatchReport, json: bool) -> None:
    if json:
        print_json(
            {
                "delivered": report.delivered,
                "failed": report.failed,
                "gave_up": report.gave_up,
                "deferred": report.deferred,
            }
        )
        return
    out.print(
        say(
            f"delivered {len(report.delivered)}, failed {len(report.failed)} (to be retried), "
            f"gave up {len(report.gave_up)}, deferred {len(report.deferred)}"
        )
    )
    for notification_id, error in report.failed.items():
        err.print(say(f"notification #{notification_id}: {error}"))


def _status_json(c: ChannelStatus) -> dict[str, Any]:
    return {
        "channel": c.name,
        "type": c.type,
        "healthy": c.healthy,
        "pending": c.pending,
        "failing": c.failing,
        "delivered": c.delivered,
        "failed": c.failed,
        "last_error": c.last_error,
        "last_error_at": c.last_error_at.isoformat() if c.last_error_at else None,
        "last_delivered_at": c.last_delivered_at.isoformat() if c.last_delivered_at else None,
        "oldest_pending_at": c.oldest_pending_at.isoformat() if c.oldest_pending_at else None,
        "problems": list(c.problems),
    }


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")
