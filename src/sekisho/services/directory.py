"""The SCIM directory, as the server and the CLI reach it: each IdP's token, its users and
its groups (`operations.directory`)."""

from __future__ import annotations

from dataclasses import dataclass

from sekisho.operations.directory import ProvisionGroups, ProvisionUsers, ScimTokens


@dataclass(frozen=True)
class DirectoryService:
    tokens: ScimTokens
    users: ProvisionUsers
    groups: ProvisionGroups
