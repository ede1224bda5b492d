"""AWS commands: brokered switch-role, the reconciler, sekisho's own policy, IAM as code."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from sekisho.cli.client import Client
from sekisho.cli.render import err, out, print_json, say, when

aws_app = typer.Typer(help="AWS: the policy sekisho itself needs.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


class Format(StrEnum):
    ENV = "env"
    JSON = "json"
    CREDENTIAL_PROCESS = "credential-process"


class ExportFormat(StrEnum):
    CLOUDFORMATION = "cloudformation"
    IAM_JSON = "iam-json"


def assume_role(
    ctx: typer.Context,
    role: Annotated[str, typer.Argument(metavar="ACCOUNT/ROLE")],
    duration: Annotated[
        str | None, typer.Option(help="At most the role's session length and the grant's end.")
    ] = None,
    output: Annotated[
        Format, typer.Option("--format", help="env, json, or credential-process.")
    ] = Format.ENV,
    console: Annotated[
        bool, typer.Option("--console", help="Also print an AWS console sign-in URL.")
    ] = False,
) -> None:
    """Role credentials from sekisho (it checks your access, then asks STS)."""
    api = Client(ctx.obj.get("server") if ctx.obj else None)
    body: dict[str, Any] = {"role": role, "console": console}
    if duration:
        body["duration"] = duration
    c = api.post("/credentials", json=body)
    if output is Format.JSON:
        print_json(c)
    elif output is Format.CREDENTIAL_PROCESS:
        # What the AWS CLI and SDKs expect from `credential_process` in ~/.aws/config.
        print(
            json.dumps(
                {
                    "Version": 1,
                    "AccessKeyId": c["access_key_id"],
                    "SecretAccessKey": c["secret_access_key"],
                    "SessionToken": c["session_token"],
                    "Expiration": c["expiration"],
                }
            )
        )
    else:
        print(f"export AWS_ACCESS_KEY_ID={c['access_key_id']}")
        print(f"export AWS_SECRET_ACCESS_KEY={c['secret_access_key']}")
        print(f"export AWS_SESSION_TOKEN={c['session_token']}")
        print(f"export AWS_CREDENTIAL_EXPIRATION={c['expiration']}")
        err.print(
            say(
                f"# {c['role_arn']} as {c['session_name']}, until {when(c['expiration'])} "
                f"({c['via']})"
            )
        )
    if c.get("console_url") and output is not Format.JSON:
        err.print(say(f"console: {c['console_url']}"))


def reconcile(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; change nothing.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Make the provider (IAM) agree with the grants; report what was done and what failed."""
    from sekisho.cli.server_cmds import open_core

    report = open_core().reconciler.run(dry_run=dry_run)
    data = {
        "dry_run": report.dry_run,
        "findings": [
            {"kind": f.kind.value, "user": f.user, "group": f.group, "detail": f.detail}
            for f in report.findings
        ],
        "done": [{"user": f.user, "group": f.group, "output": o} for f, o in report.done],
        "failed": [{"user": f.user, "group": f.group, "error": o} for f, o in report.failed],
        "unreadable": report.unreadable,
    }
    if json:
        print_json(data)
    else:
        verb = "would fix" if dry_run else "fixed"
        if report.clean:
            out.print(say(("the provider agrees with the grants", "green")))
        for finding in report.findings:
            what = f"{finding.kind.value} {finding.user} in {finding.group}"
            out.print(say(f"{verb}: {what}: {finding.detail}"))
        for finding, error in report.failed:
            out.print(say(("could not fix", "red"), f" {finding.user} in {finding.group}: {error}"))
        for group, error in report.unreadable.items():
            out.print(say(("could not read", "red"), f" {group}: {error}"))
    if report.failed or report.unreadable:
        raise typer.Exit(1)


@aws_app.command("policy")
def policy(
    model: Annotated[
        Path | None, typer.Option(help="A model file (default: the model in force).")
    ] = None,
) -> None:
    """The least-privilege IAM policy sekisho's broker needs for this model."""
    from sekisho.providers.aws_policies import broker_policy

    print_json(broker_policy(_model(model)))


def export(
    file: Path,
    output: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.CLOUDFORMATION,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the files.")] = Path(
        "iam-export"
    ),
    mfa: Annotated[bool, typer.Option(help="Require MFA to switch role, as the seed does.")] = True,
) -> None:
    """IAM from the model: CloudFormation templates per account, or bare policy documents."""
    from sekisho.providers.aws_policies import cloudformation, iam_documents

    model = _model(file)
    documents = (
        {f"{account}.json": t for account, t in cloudformation(model, mfa=mfa).items()}
        if output is ExportFormat.CLOUDFORMATION
        else iam_documents(model, mfa=mfa)
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (out_dir / name).write_text(json.dumps(document, indent=2) + "\n")
        out.print(say(f"wrote {out_dir / name}"))


def _model(path: Path | None) -> Any:
    if path is not None:
        from sekisho.model import load_file

        return load_file(path)
    from sekisho.cli.server_cmds import open_core

    return open_core().models.model()


def register(app: typer.Typer, model_app: typer.Typer) -> None:
    app.command("assume-role")(assume_role)
    app.command()(reconcile)
    app.add_typer(aws_app, name="aws")
    model_app.command("export")(export)
