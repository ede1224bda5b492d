"""`sekisho audit ...` beyond list: verify against an anchor, checkpoints, the public key.

`audit verify` asks the server by default. With `--direct` it reads the database named by
SEKISHO_DATABASE_URL itself, for a verifier who does not trust the server: with the public
key and the anchor, nothing the server says is taken on trust. `audit checkpoint` and
`audit key` are server-side: they need the signing key file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from sekisho.cli.render import err, out, print_json, say
from sekisho.cli.server_cmds import JsonOpt, open_core

if TYPE_CHECKING:
    from sekisho.services.audit import VerifyReport
    from sekisho.services.audit_anchor import Checkpoint
    from sekisho.services.audit_keys import VerifyKey

AnchorOpt = Annotated[
    str | None,
    typer.Option(
        "--anchor",
        metavar="FILE|s3://BUCKET/PREFIX",
        help="Signed checkpoints kept outside the database: a JSON Lines file or "
        "s3://BUCKET/PREFIX.",
    ),
]
PublicKeyOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--public-key",
        metavar="FILE",
        help="The audit key's public PEM (`sekisho audit key`); repeat for rotated keys.",
    ),
]
DirectOpt = Annotated[
    bool,
    typer.Option(
        "--direct",
        help="Read the database (SEKISHO_DATABASE_URL) directly instead of asking the server.",
    ),
]
SENT = 100  # checkpoints sent to the server: the newest; each vouches for all before it


def fail(message: str) -> NoReturn:
    """An anchor or a key that cannot be used: one clear line, exit 1."""
    err.print(say(("error:", "red"), f" {message}"))
    raise typer.Exit(1)


def load_anchor(where: str) -> list[Checkpoint]:
    from sekisho.services.audit_anchor import AnchorError, read_anchor

    try:
        if where.startswith("s3://"):
            from sekisho.services.audit_sinks import read_s3_anchor

            return read_s3_anchor(where)  # endpoint and region: the usual AWS_* variables
        return read_anchor(Path(where))
    except AnchorError as error:
        fail(str(error))


def load_keys(paths: list[Path] | None) -> list[VerifyKey]:
    from sekisho.services.audit_keys import AuditKeyError, VerifyKey

    try:
        return [VerifyKey.from_file(p) for p in paths or []]
    except AuditKeyError as error:
        fail(str(error))


def verify_direct(anchor: list[Checkpoint], keys: list[VerifyKey]) -> dict[str, Any]:
    """The chain and the anchor, read from the database itself (nothing is written to it)."""
    from sekisho.config import Settings
    from sekisho.services.audit_anchor import signature_problems
    from sekisho.services.audit_keys import AuditKeyError, load_signing_key

    settings = Settings()
    notes: list[str] = []
    if anchor and not keys:
        try:
            own = load_signing_key(settings.resolved_audit_key_file, create=False)
        except AuditKeyError as error:
            fail(str(error))
        if own is None:
            fail("give --public-key FILE: without it no signature can be checked")
        keys = [own.verify_key]
        notes.append(f"signatures checked with the local key file's key {keys[0].fingerprint}")
    report = _read_and_verify(settings.resolved_database_url, anchor)
    signed = signature_problems(anchor, keys)
    if signed:
        report.problems += signed
        report.ok, report.notes = False, []
    return report_json(report) | {"notes": notes + report.notes}


def _read_and_verify(url: str, anchor: list[Checkpoint]) -> VerifyReport:
    """The chain from the database at `url`, never creating or changing anything there."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from sekisho.services import audit
    from sekisho.store.db import Database

    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        fail(f"no database at {shown}: set SEKISHO_DATABASE_URL (or SEKISHO_DATA_DIR)")
    try:
        db = Database(url)
    except ValueError as error:
        fail(str(error))
    try:
        with db.snapshot() as s:
            return audit.verify(s, anchor=anchor)
    except SQLAlchemyError as error:
        fail(f"cannot read the audit trail at {shown}: {type(error).__name__}")
    finally:
        db.dispose()


def report_json(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "entries": report.entries,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "problems": report.problems,
        "anchor_checkpoints": report.anchor_checkpoints,
        "anchored_seq": report.anchored_seq,
        "notes": report.notes,
    }


def show_verify(data: dict[str, Any], json: bool) -> NoReturn:
    if json:
        print_json(data)
    elif not data["ok"]:
        err.print(say(("AUDIT TRAIL BROKEN", "red bold")))
        for problem in data["problems"]:
            err.print(say(f"  {problem}"))
    else:
        entries = "1 entry" if data["entries"] == 1 else f"{data['entries']} entries"
        head = f"{entries}, head {data['head_hash'][:16]}"
        if data.get("anchor_checkpoints"):
            out.print(
                say(
                    ("audit trail verified against the anchor", "green"),
                    f": {head}; {data['anchor_checkpoints']} checkpoint(s) match, up to entry "
                    f"{data['anchored_seq']}",
                )
            )
        else:
            out.print(say(("chain consistent", "yellow"), f": {head}"))
        for note in data.get("notes") or []:
            out.print(say(f"note: {note}"))
    raise typer.Exit(0 if data["ok"] else 1)


def checkpoint(json: JsonOpt = False) -> None:
    """Sign the audit trail's head now and export it to the anchors (server-side; the
    scheduler does this every SEKISHO_AUDIT_CHECKPOINT_EVERY). Exit 1 if refused or an
    export failed."""
    core = open_core()
    result = core.audit_checkpoints.checkpoint()
    cp = result.checkpoint
    if json:
        print_json(
            {
                "checkpoint": cp.to_json() if cp else None,
                "exported": result.exported,
                "failed": result.failed,
                "problems": result.problems,
            }
        )
    elif cp is None:
        err.print(say(("NOT SIGNED", "red bold"), ": the trail does not match its last checkpoint"))
        for problem in result.problems:
            err.print(say(f"  {problem}"))
    else:
        out.print(say(f"{cp.label} signed by {cp.node} with {cp.key}"))
        out.print(say(cp.to_line()), soft_wrap=True)
        for where in result.exported:
            out.print(say(f"exported to {where}"))
        for failure in result.failed:
            err.print(say(("not exported", "red"), f": {failure}"))
        if not result.exported and not result.failed:
            err.print(
                say(
                    "note: no anchor is configured (SEKISHO_AUDIT_ANCHOR_FILE, "
                    "SEKISHO_AUDIT_ANCHOR_S3): keep the line above where the database's "
                    "writers cannot reach it"
                )
            )
    raise typer.Exit(0 if result.ok else 1)


def key(
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the PEM here.")] = None,
) -> None:
    """The audit key's public half (PEM) and fingerprint, for verifiers (server-side; the
    key file is created on first use)."""
    from sekisho.config import Settings
    from sekisho.services.audit_keys import AuditKeyError, load_signing_key

    settings = Settings()
    try:
        signing = load_signing_key(settings.resolved_audit_key_file, create=True)
    except AuditKeyError as error:
        fail(str(error))
    assert signing is not None
    public = signing.verify_key
    if out_file is not None:
        out_file.write_text(public.pem())
        err.print(say(f"public key written to {out_file}"))
    else:
        print(public.pem(), end="")
    err.print(say(f"fingerprint {public.fingerprint}"))


def register(audit_app: typer.Typer) -> None:
    audit_app.command("checkpoint")(checkpoint)
    audit_app.command("key")(key)
