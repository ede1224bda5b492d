"""Client commands: they talk to the server as the logged-in user."""

from __future__ import annotations

import getpass
import re
import sys
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

import typer
from rich.table import Table

from sekisho.cli import audit_cmds
from sekisho.cli.client import Client, SavedLogin, forget_login, load_login, save_login
from sekisho.cli.render import (
    EMERGENCY,
    audit_table,
    emergencies_table,
    emit,
    grants_table,
    literal,
    out,
    print_json,
    request_detail,
    requests_table,
    say,
    when,
)
from sekisho.cli.sso_login import LoopbackReceiver, device_token, open_browser, sso_start
from sekisho.domain.errors import InvalidInput
from sekisho.domain.requests import RequestStatus
from sekisho.domain.timespec import parse_duration

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

request_app = typer.Typer(help="File, decide and follow requests.", no_args_is_help=True)
grant_app = typer.Typer(help="Grants: list, release yours, revoke (admins).", no_args_is_help=True)
audit_app = typer.Typer(
    help="The audit trail: list, verify (against an anchor), checkpoint, key.",
    no_args_is_help=True,
)
can_app = typer.Typer(help="May USER assume a role / connect to a target now?")


def client(ctx: typer.Context) -> Client:
    return Client(ctx.obj.get("server") if ctx.obj else None)


def pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """KEY=TEXT options into a dict; a malformed one is an input error naming the option."""
    result: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput.one(option, "key_equals_value", f"{item!r} is not KEY=TEXT")
        result[key.strip()] = value
    return result


def since_value(text: str | None, option: str) -> str | None:
    """An ISO time, or a duration meaning that long ago (e.g. 2h)."""
    if text is None:
        return None
    if re.fullmatch(r"\d+[dhms](\d+[hms])*", text.strip()):
        return (datetime.now(UTC) - parse_duration(text, option)).isoformat()
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput.one(option, "time_format", f"{text!r} is not ISO 8601 or 2h") from exc
    return (at if at.tzinfo else at.astimezone()).isoformat()


def login(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Your user name.")] = None,
    otp: Annotated[
        str | None, typer.Option("--otp", help="The 6-digit code from your app.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    print_env: Annotated[
        bool,
        typer.Option("--print-env", help="Print `export SEKISHO_TOKEN=...` instead of saving."),
    ] = False,
    sso: Annotated[
        bool, typer.Option("--sso", help="Sign in through the identity provider, in a browser.")
    ] = False,
    browser: Annotated[
        bool, typer.Option(help="With --sso: open the browser (else only print the URL).")
    ] = True,
    device: Annotated[
        bool,
        typer.Option(
            "--device", help="Sign in through the identity provider with a code, from any browser."
        ),
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="With --sso: the identity provider signs you in again, even with a session "
            "(a step-up, for decisions that ask for a fresh multi-factor sign-in).",
        ),
    ] = False,
) -> None:
    """Password + TOTP code (or the identity provider: --sso in this machine's browser,
    --device from any browser) -> a short-lived token, saved privately or printed as env."""
    api = client(ctx)
    if fresh and not sso:
        raise InvalidInput.one("fresh", "needs_sso", "--fresh works with --sso (the browser)")
    if sso or device:
        data = _sso_token(api, browser=browser, fresh=fresh) if sso else device_token(api, _tell)
        _logged_in(api, data, print_env)
        return
    if not user:
        raise InvalidInput.one("user", "required", "give --user NAME (or sign in with --sso)")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
    code = otp or typer.prompt("TOTP code")
    data = api.post(
        "/auth/login", auth=False, json={"user": user, "password": password, "otp": code}
    )
    _logged_in(api, data, print_env)


def _tell(text: str) -> None:
    print(text, file=sys.stderr)  # stdout stays clean for --print-env


def _sso_token(api: Client, *, browser: bool, fresh: bool) -> Any:
    """The browser signs in at the IdP; the code it brings to our loopback listener, with
    our PKCE verifier, becomes the token (`sso_login`)."""
    with LoopbackReceiver() as receiver:
        start = sso_start(api.server, receiver.redirect_uri, fresh=fresh)
        open_browser(start.url, _tell, browser=browser)
        code = receiver.wait()
    return api.post(
        "/auth/sso/token", auth=False, json={"code": code, "code_verifier": start.verifier}
    )


def _logged_in(api: Client, data: Any, print_env: bool) -> None:
    if print_env:
        print(f"export SEKISHO_TOKEN={data['token']}")
        print(f"export SEKISHO_SERVER={api.server}")
        return
    path = save_login(SavedLogin(api.server, data["user"], data["token"], data["expires_at"]))
    out.print(
        say("logged in as ", literal(data["user"], "bold"), f" until {when(data['expires_at'])}")
    )
    out.print(say((f"token saved to {path} (mode 0600)", "dim")))


def logout(ctx: typer.Context) -> None:
    """End this token now."""
    api = client(ctx)
    if api.token:
        api.post("/auth/logout")
    saved = load_login()
    if saved is not None:
        forget_login()
    out.print(say("logged out"))


def whoami(ctx: typer.Context, json: JsonOpt = False) -> None:
    """You, your groups, and your active grants."""
    data = client(ctx).get("/me")
    if json:
        print_json(data)
        return
    out.print(say(literal(data["user"], "bold"), f" ({data['display_name']})"))
    out.print(say(f"groups: {', '.join(data['groups']) or 'none'}"))
    if data.get("token_expires_at"):
        out.print(say(f"token valid until {when(data['token_expires_at'])}"))
    if signed_in := data.get("signed_in"):
        how = f" ({', '.join(signed_in['amr'])})" if signed_in.get("amr") else ""
        at = f" at {when(signed_in['auth_time'])}" if signed_in.get("auth_time") else ""
        out.print(say("signed in through the identity provider", literal(how), at))
    for lock in data.get("locks") or []:
        out.print(
            say(
                ("locked: ", "red"),
                f"{lock['kind']} ",
                literal(lock["subject"]),
                ": ",
                literal(lock["message"]),
            )
        )
    if data["grants"]:
        out.print(grants_table(data["grants"]))
    else:
        out.print(say("no active grants"))


def can(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Who is asking for access.")],
    verb: Annotated[str, typer.Argument(help="assume | connect")],
    obj: Annotated[str, typer.Argument(metavar="ACCOUNT/ROLE|TARGET")],
    json: JsonOpt = False,
) -> None:
    """May USER assume ACCOUNT/ROLE or connect TARGET now? Exit 0 if allowed, 1 if not."""
    if verb not in ("assume", "connect"):
        raise typer.BadParameter("VERB is assume or connect", param_hint="VERB")
    data = client(ctx).post("/decisions", json={"user": user, "verb": verb, "object": obj})
    if json:
        print_json(data)
    elif data["allowed"]:
        until = f" until {when(data['grant_end'])}" if data.get("grant_end") else ""
        out.print(say(("ALLOWED", "green"), f" {user} {verb} {obj}: {data['reason']}{until}"))
    else:
        out.print(say(("DENIED", "red"), f" {user} {verb} {obj}: {data['reason']}"))
    raise typer.Exit(0 if data["allowed"] else 1)


@request_app.command("create")
def create(
    ctx: typer.Context,
    template: Annotated[str, typer.Option("--template", "-t", help="e.g. AddUserToGroup")],
    group: Annotated[str, typer.Option("--group", "-g", help="The work group to join.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why you need access.")],
    until: Annotated[
        str | None,
        typer.Option(help="End: ISO 8601, or YYYYMMDDhhmm in the model's time zone."),
    ] = None,
    for_: Annotated[str | None, typer.Option("--for", help="Duration, e.g. 2h30m.")] = None,
    start: Annotated[str | None, typer.Option(help="Start later than now.")] = None,
    user: Annotated[str | None, typer.Option(help="For someone else (admins).")] = None,
    info: Annotated[
        list[str] | None, typer.Option("--info", help="Change information KEY=TEXT.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="Template parameter KEY=VALUE.")
    ] = None,
    emergency: Annotated[
        bool,
        typer.Option(
            "--emergency",
            help="Break-glass: granted at once, with --reason and the ticket --param; "
            "alerted and reviewed after.",
        ),
    ] = False,
    json: JsonOpt = False,
) -> None:
    """File a request from a template."""
    body: dict[str, Any] = {
        "template": template,
        "group": group,
        "reason": reason,
        "until": until,
        "for": for_,
        "start": start,
        "user": user,
        "info": pairs(info, "info"),
        "params": pairs(param, "param"),
        "emergency": emergency or None,
    }
    data = client(ctx).post("/requests", json={k: v for k, v in body.items() if v is not None})
    if json:
        print_json(data)
        return
    out.print(say("request ", (f"#{data['id']}", "bold"), f" filed: {data['status']}"))
    if data.get("emergency"):
        out.print(
            say(EMERGENCY, f": approvers alerted; review due by {when(data['review_due_at'])}")
        )
    if data["status"] == "pending_approval":
        approvers = ", ".join(level["approvers"] for level in data["levels"])
        out.print(say(f"waiting for approval by {approvers} (decide by {when(data['decide_by'])})"))


@request_app.command("list")
def list_requests(
    ctx: typer.Context,
    mine: Annotated[bool, typer.Option("--mine", help="Filed by or for me.")] = False,
    to_approve: Annotated[
        bool, typer.Option("--to-approve", help="Waiting for my decision.")
    ] = False,
    status: Annotated[RequestStatus | None, typer.Option(help="Only this status.")] = None,
    emergency: Annotated[
        bool, typer.Option("--emergency", help="Only emergency (break-glass) requests.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    json: JsonOpt = False,
) -> None:
    """Requests you may see, newest first."""
    params: dict[str, Any] = {"mine": mine, "to_approve": to_approve, "limit": limit}
    if emergency:
        params["emergency"] = True
    if status is not None:
        params["status"] = status.value
    emit(client(ctx).get("/requests", params=params), json, requests_table, empty="no requests")


@request_app.command("show")
def show(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(metavar="ID", min=1)],
    json: JsonOpt = False,
) -> None:
    """A request with its approvals and timeline."""
    emit(client(ctx).get(f"/requests/{request_id}"), json, request_detail)


def decided(data: dict[str, Any], json: bool) -> None:
    if json:
        print_json(data)
        return
    out.print(say(f"request #{data['id']} is now ", (data["status"], "bold")))
    if data.get("grant"):
        g = data["grant"]
        out.print(say(f"grant #{g['id']}: {g['user']} in {g['group']} until {when(g['end_at'])}"))


@request_app.command("approve")
def approve(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(metavar="ID", min=1)],
    comment: Annotated[str, typer.Option(help="Shown on the timeline.")] = "",
    json: JsonOpt = False,
) -> None:
    """Approve a request at its current level."""
    decided(client(ctx).post(f"/requests/{request_id}/approve", json={"comment": comment}), json)


@request_app.command("reject")
def reject(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(metavar="ID", min=1)],
    comment: Annotated[str, typer.Option(help="Why (required).")],
    json: JsonOpt = False,
) -> None:
    """Reject a request; one rejection ends it."""
    decided(client(ctx).post(f"/requests/{request_id}/reject", json={"comment": comment}), json)


@request_app.command("cancel")
def cancel(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(metavar="ID", min=1)],
    json: JsonOpt = False,
) -> None:
    """Withdraw your pending request."""
    decided(client(ctx).post(f"/requests/{request_id}/cancel"), json)


@request_app.command("review")
def review(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(metavar="ID", min=1)],
    comment: Annotated[str, typer.Option(help="What the review found (required).")],
    json: JsonOpt = False,
) -> None:
    """Mark an emergency reviewed after the incident (an approver of its template, once)."""
    data = client(ctx).post(f"/requests/{request_id}/review", json={"comment": comment})
    if json:
        print_json(data)
        return
    out.print(say(f"emergency #{data['id']} reviewed by {data['reviewed_by']}"))


@grant_app.command("list")
def list_grants(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Only those active now.")] = False,
    user: Annotated[str | None, typer.Option(help="Someone else's (auditors).")] = None,
    json: JsonOpt = False,
) -> None:
    """Your grants (auditors: anyone's), newest first."""
    params: dict[str, Any] = {"active": active}
    if user:
        params["user"] = user
    table = partial(grants_table, you_may=True)
    emit(client(ctx).get("/grants", params=params), json, table, empty="no grants")


@grant_app.command("release")
def release(
    ctx: typer.Context,
    grant_id: Annotated[int, typer.Argument(metavar="ID", min=1)],
    json: JsonOpt = False,
) -> None:
    """I'm done: end my grant now."""
    emit(client(ctx).post(f"/grants/{grant_id}/release"), json, ended)


@grant_app.command("extend")
def extend(
    ctx: typer.Context,
    grant_id: Annotated[int, typer.Argument(metavar="ID", min=1)],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why you need more time.")],
    for_: Annotated[
        str | None, typer.Option("--for", help="Added to the current end, e.g. 1h.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="The new end: ISO 8601, or YYYYMMDDhhmm in the model's time zone."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Ask for more time on your active grant, with no gap in access."""
    body = {"reason": reason, "for": for_, "until": until}
    data = client(ctx).post(
        f"/grants/{grant_id}/extend", json={k: v for k, v in body.items() if v is not None}
    )
    if json:
        print_json(data)
        return
    new_end = when(data["end_at"])
    if data["status"] == "succeeded":
        out.print(say("grant ", (f"#{grant_id}", "bold"), f" extended until {new_end}"))
        return
    filed = f" filed to extend grant #{grant_id} until {new_end}: {data['status']}"
    out.print(say("request ", (f"#{data['id']}", "bold"), filed))
    if data["status"] == "pending_approval":
        approvers = ", ".join(level["approvers"] for level in data["levels"])
        out.print(say(f"waiting for approval by {approvers} by {when(data['decide_by'])}"))


@grant_app.command("revoke")
def revoke(
    ctx: typer.Context,
    grant_id: Annotated[int, typer.Argument(metavar="ID", min=1)],
    reason: Annotated[str, typer.Option(help="Why (required, audited).")],
    json: JsonOpt = False,
) -> None:
    """End someone's grant now (admins)."""
    emit(client(ctx).post(f"/grants/{grant_id}/revoke", json={"reason": reason}), json, ended)


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="As actor or subject.")] = None,
    request: Annotated[int | None, typer.Option(min=1, help="Request number.")] = None,
    action: Annotated[
        str | None, typer.Option(help="e.g. grant.expired, or a prefix like grant.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time, or 2h for 2h ago.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time, or 30m for 30m ago.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 100,
    json: JsonOpt = False,
) -> None:
    """Who did what, when, for which request (auditors and admins)."""
    params: dict[str, Any] = {"limit": limit}
    for key, value in (
        ("user", user),
        ("request", request),
        ("action", action),
        ("since", since_value(since, "since")),
        ("until", since_value(until, "until")),
    ):
        if value is not None:
            params[key] = value
    emit(client(ctx).get("/audit", params=params), json, audit_table, empty="no entries")


@audit_app.command("emergencies")
def audit_emergencies(ctx: typer.Context, json: JsonOpt = False) -> None:
    """Emergency (break-glass) use per person: uses, reviews, overdue (auditors and admins)."""
    rows = client(ctx).get("/audit/emergencies")
    emit(rows, json, emergencies_table, empty="no emergency use")


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    anchor: audit_cmds.AnchorOpt = None,
    public_key: audit_cmds.PublicKeyOpt = None,
    direct: audit_cmds.DirectOpt = False,
    json: JsonOpt = False,
) -> None:
    """Prove the trail was not edited: walk the hash chain and, with --anchor, compare it with
    signed checkpoints kept elsewhere (catches a cut end, a re-hash, a replaced trail). Exit 1
    if anything does not match."""
    checkpoints = audit_cmds.load_anchor(anchor) if anchor else []
    keys = audit_cmds.load_keys(public_key)
    if direct:
        audit_cmds.show_verify(audit_cmds.verify_direct(checkpoints, keys), json)
    if not checkpoints:
        audit_cmds.show_verify(client(ctx).get("/audit/verify"), json)
    from sekisho.services.audit_anchor import latest, signature_problems

    local = signature_problems(checkpoints, keys) if keys else []
    sent = [c.to_json() for c in latest(checkpoints, audit_cmds.SENT)]
    data = client(ctx).post("/audit/verify", json={"checkpoints": sent})
    if local:  # the server's answer does not outweigh a signature this machine checked
        data = data | {"ok": False, "problems": [*data["problems"], *local], "notes": []}
    elif keys:
        data["notes"] = [
            *data["notes"],
            f"signatures checked here with {', '.join(k.fingerprint for k in keys)}",
        ]
    audit_cmds.show_verify(data, json)


def show_user(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A user name (yours, or anyone's for auditors).")],
    json: JsonOpt = False,
) -> None:
    """A user's groups, active grants, and the directory: work-group memberships, TTL tags."""
    who = client(ctx).get(f"/users/{name}")
    if json:
        print_json(who)
        return
    out.print(
        say(literal(who["user"], "bold"), f" ({who['display_name']}) {who.get('email') or ''}")
    )
    out.print(say(f"standing groups: {', '.join(who['groups']) or 'none'}"))
    roles = [r for r in ("admin", "auditor") if who.get(r)]
    if roles:
        out.print(say(f"sekisho roles: {', '.join(roles)}"))
    directory = who.get("directory") or {"provider": "?", "memberships": [], "tags": {}}
    table = Table(
        title=literal(f"Directory ({directory['provider']} provider)"), title_justify="left"
    )
    table.add_column("Work group membership")
    table.add_column("TTL tag")
    tags = directory["tags"]
    for group in sorted(set(directory["memberships"]) | set(tags)):
        member = group if group in directory["memberships"] else "-"
        table.add_row(literal(member), literal(tags.get(group, "-")))
    out.print(table)
    out.print(grants_table(who["grants"]) if who["grants"] else say("no active grants"))


def ended(grant: dict[str, Any]) -> str:
    return f"grant #{grant['id']} {grant['status']} ({grant['end_reason']})"


def register(app: typer.Typer) -> None:
    app.add_typer(request_app, name="request")
    app.add_typer(grant_app, name="grant")
    app.add_typer(audit_app, name="audit")
    audit_cmds.register(audit_app)  # checkpoint, key: server-side
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
    app.command(name="can")(can)
