"""Certificate authorities shared by every node on one database, stored once, key sealed.

Nodes that share a database share its CA, so a client holding it verifies any node's gateway.
The first node to need one stores it; a node racing it reads the winner's instead (the name
is the primary key: one insert wins, on SQLite and PostgreSQL alike). The key is sealed with
`SecretBox` (SEKISHO_SECRET_KEY, which nodes on one database already share); this module
deals in PEM text and leaves the cryptography to `sekisho.gateway.pki`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from sekisho.clock import Clock
from sekisho.domain.events import CertificateAuthorityStored
from sekisho.services.secretbox import SecretBox
from sekisho.store.db import Database
from sekisho.store.tables import CertificateAuthorityRow
from sekisho.store.unit_of_work import Store

GATEWAY_CA = "gateway"
CREATED, IMPORTED = "created", "imported"


@dataclass(frozen=True)
class StoredCA:
    name: str
    cert_pem: str
    key_sealed: str  # open it with the nodes' SecretBox
    origin: str
    created_by: str


@dataclass(frozen=True)
class CandidateCA:
    """A CA a node offers to store: one it made now, or one it had from before."""

    cert_pem: str
    key_pem: str
    origin: str  # CREATED or IMPORTED
    sha256: str  # the certificate's fingerprint, for the audit trail


class SharedCAs:
    def __init__(self, store: Store, clock: Clock, box: SecretBox) -> None:
        self._store, self._clock, self._box = store, clock, box

    def get(self, name: str) -> StoredCA | None:
        with self._store.read() as s:
            row = s.get(CertificateAuthorityRow, name)
            return _stored(row) if row is not None else None

    def store_or_get(self, name: str, candidate: CandidateCA, node: str) -> StoredCA:
        """Store `candidate` unless a CA of that name is stored already; the stored one.

        Two nodes starting at once both offer one; the first insert wins and the other's
        insert fails on the name, so both return the winner.
        """
        now = self._clock.now()
        row = CertificateAuthorityRow(
            name=name,
            cert_pem=candidate.cert_pem,
            key_sealed=self._box.seal(candidate.key_pem),
            origin=candidate.origin,
            created_at=now,
            created_by=node[:256],
        )
        try:
            with self._store.write() as uow:
                if uow.session.get(CertificateAuthorityRow, name) is None:
                    uow.session.add(row)
                    # On PostgreSQL, a racing node's insert fails here or at the commit.
                    uow.session.flush()
                    uow.record(
                        CertificateAuthorityStored(
                            now, name, candidate.origin, candidate.sha256, node
                        )
                    )
        except IntegrityError:
            pass  # another node stored one first: that one is everyone's
        stored = self.get(name)
        assert stored is not None, "a CA was just stored"
        return stored


def stored_certificate(db: Database, name: str = GATEWAY_CA) -> str | None:
    """The shared CA's certificate (public), if stored. Reads only: never makes one."""
    with db.read() as s:
        found: str | None = s.scalar(
            select(CertificateAuthorityRow.cert_pem).where(CertificateAuthorityRow.name == name)
        )
        return found


def _stored(row: CertificateAuthorityRow) -> StoredCA:
    return StoredCA(row.name, row.cert_pem, row.key_sealed, row.origin, row.created_by)
