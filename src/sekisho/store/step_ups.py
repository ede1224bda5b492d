"""The strong factors a signed-in session has shown: its sign-in and its passkey step-ups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sekisho.domain.step_up import Proof, ProofMethod, says_mfa
from sekisho.store.tables import StepUpRow, TokenRow

KEPT_PER_SESSION = 5  # older step-ups than these never matter: the newest one is fresh or none is


def proofs_of(session: Session, token_id: str | None) -> list[Proof]:
    """Every proof the session of `token_id` holds; none for no session (a system actor)."""
    if token_id is None:
        return []
    token = session.get(TokenRow, token_id)
    if token is None:
        return []
    rows = session.scalars(select(StepUpRow).where(StepUpRow.token_id == token_id))
    found = [Proof(ProofMethod(row.method), row.proven_at) for row in rows]
    sign_in = _sign_in_proof(token)
    return found if sign_in is None else [sign_in, *found]


def _sign_in_proof(token: TokenRow) -> Proof | None:
    if token.auth_method is None:  # sekisho's own sign-in: password and TOTP, at issue
        return Proof(ProofMethod.PASSWORD_TOTP, token.issued_at)
    if token.auth_time is not None and says_mfa((token.amr or "").split()):
        return Proof(ProofMethod.IDP_MFA, token.auth_time)
    return None


def record(session: Session, token_id: str, user: str, passkey_id: int, at: datetime) -> StepUpRow:
    """A passkey step-up on this session; the session keeps only its newest few."""
    row = StepUpRow(
        token_id=token_id,
        user=user,
        method=ProofMethod.PASSKEY,
        passkey_id=passkey_id,
        proven_at=at,
    )
    session.add(row)
    session.flush()
    kept = (
        select(StepUpRow.id)
        .where(StepUpRow.token_id == token_id)
        .order_by(StepUpRow.id.desc())
        .limit(KEPT_PER_SESSION)
    )
    session.execute(
        delete(StepUpRow).where(StepUpRow.token_id == token_id, StepUpRow.id.not_in(kept))
    )
    return row
