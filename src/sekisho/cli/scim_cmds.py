"""`sekisho scim token IDP`: the bearer token an identity provider provisions with.

A server-side command (it opens the database, as `user enroll` does): the token is shown
once and only its SHA-256 is kept; issuing a new one retires the IdP's old one.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sekisho.cli.render import out, print_json, say
from sekisho.cli.server_cmds import CLI, JsonOpt, open_core

scim_app = typer.Typer(help="SCIM 2.0: the tokens identity providers provision with.")


@scim_app.command("token")
def token(
    idp: Annotated[str, typer.Argument(help="The identity provider's name here: okta, entra.")],
    json: JsonOpt = False,
) -> None:
    """Issue IDP's SCIM bearer token (shown once); the one it had stops working."""
    core = open_core()
    issued = core.directory.tokens.issue(CLI, idp)
    base = f"{core.settings.public_url.rstrip('/')}/scim/v2"
    if json:
        print_json({"idp": idp, "token": issued, "base_url": base})
        return
    out.print(say((idp, "bold"), " may provision users and groups now. Shown once:"))
    out.print(say(f"  SCIM base URL: {base}"))
    out.print(say(f"  bearer token:  {issued}"))


def register(app: typer.Typer) -> None:
    app.add_typer(scim_app, name="scim")
