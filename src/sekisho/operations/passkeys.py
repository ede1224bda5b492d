"""Passkeys and step-up: RegisterPasskey, RemovePasskey, ProvePasskey, and the one check every
decision asks (`require_step_up`).

A ceremony is two calls: `begin` stores the one challenge this session may answer (per purpose,
five minutes, any earlier one replaced) and gives the browser its options; `finish` takes that
challenge away first, in its own transaction, so an answer is checked at most once whatever
it holds, then checks it and records the outcome. A refused answer is audited (denied) and
changes nothing else.

Adding a passkey needs a sign-in (or a passkey) within the last ten minutes: a stolen session
cookie must not be able to enrol the attacker's authenticator and then pass every step-up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.domain.actor import Actor
from sekisho.domain.errors import InvalidInput, NotFound, StepUpRequired
from sekisho.domain.events import PasskeyRefused, PasskeyRegistered, PasskeyRemoved, StepUpProven
from sekisho.domain.step_up import Factor, Proof, StepUpRule, fresh_proof
from sekisho.domain.text import check_text
from sekisho.sso import passkeys as webauthn
from sekisho.sso.passkeys import (
    NewPasskey,
    PasskeyAnswerRefused,
    PasskeysUnavailable,
    RelyingParty,
)
from sekisho.store import step_ups
from sekisho.store.tables import PasskeyRow, WebAuthnChallengeRow
from sekisho.store.unit_of_work import Store, UnitOfWork

CHALLENGE_TTL = timedelta(minutes=5)
ENROL_RULE = StepUpRule(within=timedelta(minutes=10), factor=Factor.MFA)
MAX_PASSKEYS = 10
NAME_LENGTH = 64
REGISTER, ASSERT = "register", "assert"


def require_step_up(
    session: Session, rule: StepUpRule | None, actor: Actor, now: datetime, how: str
) -> Proof | None:
    """The fresh proof `rule` asks of the actor's session; StepUpRequired (saying `how`) if it
    has none. None when no rule applies."""
    if rule is None:
        return None
    proof = fresh_proof(rule, step_ups.proofs_of(session, actor.token_id), now)
    if proof is None:
        raise StepUpRequired(how)
    return proof


class Ceremony:
    """What both ceremonies share: the relying party, and the one challenge per purpose."""

    def __init__(self, store: Store, clock: Clock, public_url: str) -> None:
        self.store, self._clock = store, clock
        self._rp = RelyingParty.of(public_url)

    @property
    def rp(self) -> RelyingParty:
        if self._rp is None:
            raise PasskeysUnavailable(
                "passkeys need sekisho at a host name (browsers refuse an IP address): "
                "set SEKISHO_PUBLIC_URL to the name people open it at"
            )
        return self._rp

    def keep(self, uow: UnitOfWork, actor: Actor, purpose: str, challenge: str) -> None:
        token_id = _session_of(actor)
        s, now = uow.session, self._clock.now()
        s.execute(delete(WebAuthnChallengeRow).where(WebAuthnChallengeRow.expires_at <= now))
        s.execute(
            delete(WebAuthnChallengeRow).where(
                WebAuthnChallengeRow.token_id == token_id, WebAuthnChallengeRow.purpose == purpose
            )
        )
        s.add(
            WebAuthnChallengeRow(
                token_id=token_id,
                purpose=purpose,
                challenge=challenge,
                expires_at=now + CHALLENGE_TTL,
            )
        )

    def take(self, actor: Actor, purpose: str) -> str:
        """The challenge this session's `purpose` ceremony answers, gone once taken."""
        with self.store.write() as uow:
            row = uow.session.get(WebAuthnChallengeRow, (_session_of(actor), purpose))
            if row is not None:
                uow.session.delete(row)
            if row is not None and row.expires_at > self._clock.now():
                return row.challenge
        self.refuse(actor, purpose, "no ceremony was started, or it took over five minutes")

    def refuse(self, actor: Actor, purpose: str, why: str) -> NoReturn:
        with self.store.write() as uow:
            uow.record(PasskeyRefused(self._clock.now(), actor, purpose, why))
        raise InvalidInput.one("credential", "passkey_refused", why)


class RegisterPasskey:
    """A signed-in person adds a passkey: `begin` for the browser's options, then `finish`."""

    def __init__(self, ceremony: Ceremony, clock: Clock) -> None:
        self._ceremony, self._clock = ceremony, clock

    def begin(self, actor: Actor, display_name: str) -> str:
        rp = self._ceremony.rp
        with self._ceremony.store.write() as uow:
            s, now = uow.session, self._clock.now()
            how = "adding a passkey needs a sign-in within the last 10m: sign out, sign in again"
            require_step_up(s, ENROL_RULE, actor, now, how)
            have = _credential_ids(s, actor.name)
            if len(have) >= MAX_PASSKEYS:
                raise InvalidInput.one(
                    "passkey", "too_many", f"a person keeps at most {MAX_PASSKEYS} passkeys"
                )
            challenge = webauthn.registration(rp, actor.name, display_name, have)
            self._ceremony.keep(uow, actor, REGISTER, challenge.value)
        return challenge.options

    def finish(self, actor: Actor, answer_text: str, name: str) -> int:
        name = check_text("name", name or "passkey", max_length=NAME_LENGTH) or "passkey"
        rp, challenge = self._ceremony.rp, self._ceremony.take(actor, REGISTER)
        try:
            new = webauthn.check_registration(rp, webauthn.read_answer(answer_text), challenge)
        except PasskeyAnswerRefused as exc:
            self._ceremony.refuse(actor, REGISTER, str(exc))
        with self._ceremony.store.write() as uow:
            taken = _passkey(uow.session, new.credential_id) is not None
            if not taken:
                return self._stored(uow, actor, new, name)
        self._ceremony.refuse(actor, REGISTER, "this passkey is registered already")

    def _stored(self, uow: UnitOfWork, actor: Actor, new: NewPasskey, name: str) -> int:
        now = self._clock.now()
        row = PasskeyRow(
            user=actor.name,
            credential_id=new.credential_id,
            public_key=new.public_key,
            sign_count=new.sign_count,
            name=name,
            created_at=now,
        )
        uow.session.add(row)
        uow.session.flush()
        uow.record(PasskeyRegistered(now, actor, row.id, name))
        return row.id


class RemovePasskey:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def execute(self, actor: Actor, passkey_id: int) -> None:
        with self._store.write() as uow:
            row = uow.session.get(PasskeyRow, passkey_id)
            if row is None or row.user != actor.name:
                raise NotFound(f"you have no passkey #{passkey_id}")
            uow.session.delete(row)
            uow.record(PasskeyRemoved(self._clock.now(), actor, passkey_id, row.name))


class ProvePasskey:
    """A step-up: the person asserts one of their passkeys, user verified, on this session."""

    def __init__(self, ceremony: Ceremony, clock: Clock) -> None:
        self._ceremony, self._clock = ceremony, clock

    def begin(self, actor: Actor) -> str:
        rp = self._ceremony.rp
        with self._ceremony.store.write() as uow:
            have = _credential_ids(uow.session, actor.name)
            if not have:
                raise InvalidInput.one(
                    "passkey", "none_registered", "you have no passkey yet: add one under Passkeys"
                )
            challenge = webauthn.assertion(rp, have)
            self._ceremony.keep(uow, actor, ASSERT, challenge.value)
        return challenge.options

    def finish(self, actor: Actor, answer_text: str) -> datetime:
        rp, challenge = self._ceremony.rp, self._ceremony.take(actor, ASSERT)
        try:
            answer = webauthn.read_answer(answer_text)
        except PasskeyAnswerRefused as exc:
            self._ceremony.refuse(actor, ASSERT, str(exc))
        with self._ceremony.store.write() as uow:
            row = _passkey(uow.session, answer["id"])
            if row is None or row.user != actor.name:
                why = "the passkey is not one of yours"
            else:
                try:
                    count = webauthn.check_assertion(
                        rp, answer, challenge, row.public_key, row.sign_count
                    )
                except PasskeyAnswerRefused as exc:
                    why = str(exc)
                else:
                    return self._proven(uow, actor, row, count)
        self._ceremony.refuse(actor, ASSERT, why)

    def _proven(self, uow: UnitOfWork, actor: Actor, row: PasskeyRow, count: int) -> datetime:
        now = self._clock.now()
        row.sign_count, row.last_used_at = count, now
        step_ups.record(uow.session, _session_of(actor), actor.name, row.id, now)
        uow.record(StepUpProven(now, actor, row.id, row.name))
        return now


def _session_of(actor: Actor) -> str:
    if actor.token_id is None:
        raise InvalidInput.one("session", "signed_in", "passkeys need a signed-in session")
    return actor.token_id


def _credential_ids(s: Session, user: str) -> list[str]:
    query = select(PasskeyRow.credential_id).where(PasskeyRow.user == user).order_by(PasskeyRow.id)
    return list(s.scalars(query))


def _passkey(s: Session, credential_id: str) -> PasskeyRow | None:
    row: PasskeyRow | None = s.scalar(
        select(PasskeyRow).where(PasskeyRow.credential_id == credential_id[:1400])
    )
    return row
