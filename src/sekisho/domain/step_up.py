"""Step-up: a fresh strong factor before a decision acts. Pure: proofs and rules in, answers out.

A template may ask that whoever approves its requests (or files them) proved a strong factor
within a short while: `step_up: {within: 5m, factor: passkey | mfa}`. The proofs a signed-in
session holds are its sign-in (password + TOTP, or an ID token whose `amr` says MFA, at its
`auth_time`) and the passkey assertions made on it since. A passkey (user-verified WebAuthn)
is multi-factor too, so it meets `mfa`; a sign-in never meets `passkey`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sekisho.domain.timespec import format_duration


class Factor(StrEnum):
    PASSKEY = "passkey"  # a WebAuthn assertion with user verification, on this session
    MFA = "mfa"  # any multi-factor proof: a passkey, password + TOTP, an IdP's MFA


class StepUpAct(StrEnum):
    APPROVE = "approve"  # approving a request of the template
    REQUEST = "request"  # filing one (for a self-service, auto-approved template: activating)


class ProofMethod(StrEnum):
    PASSWORD_TOTP = "password+totp"  # sekisho's own sign-in
    IDP_MFA = "idp-mfa"  # the identity provider's sign-in, its amr saying MFA
    PASSKEY = "passkey"


@dataclass(frozen=True)
class StepUpRule:
    within: timedelta
    factor: Factor
    acts: frozenset[StepUpAct] = frozenset({StepUpAct.APPROVE})

    def covers(self, act: StepUpAct) -> bool:
        return act in self.acts

    @property
    def phrase(self) -> str:
        what = (
            "a passkey" if self.factor is Factor.PASSKEY else "a multi-factor sign-in or a passkey"
        )
        return f"{what} within the last {format_duration(self.within)}"


@dataclass(frozen=True)
class Proof:
    """One strong factor this session showed, and when."""

    method: ProofMethod
    at: datetime

    @property
    def factor(self) -> Factor:
        return Factor.PASSKEY if self.method is ProofMethod.PASSKEY else Factor.MFA


# RFC 8176's method references, by what kind of factor each one is.
_KNOWLEDGE = frozenset({"pwd", "pin", "kba"})
_POSSESSION = frozenset({"otp", "sms", "tel", "hwk", "swk", "sc", "pop"})
_INHERENCE = frozenset({"fpt", "face", "iris", "retina", "vbm"})


def says_mfa(amr: Iterable[str]) -> bool:
    """Whether an ID token's `amr` says the person proved more than one kind of factor:
    `mfa` itself (Entra ID, Okta), or methods of two kinds (e.g. `pwd` and `otp`)."""
    given = frozenset(amr)
    if "mfa" in given:
        return True
    kinds = [kind for kind in (_KNOWLEDGE, _POSSESSION, _INHERENCE) if kind & given]
    return len(kinds) >= 2


def meets(rule: StepUpRule, proof: Proof, now: datetime) -> bool:
    if rule.factor is Factor.PASSKEY and proof.factor is not Factor.PASSKEY:
        return False
    return now - rule.within <= proof.at <= now + timedelta(seconds=5)


def fresh_proof(rule: StepUpRule, proofs: Iterable[Proof], now: datetime) -> Proof | None:
    """The newest proof that meets the rule now, if any."""
    meeting = [proof for proof in proofs if meets(rule, proof, now)]
    return max(meeting, key=lambda proof: proof.at, default=None)


def how_to_step_up(rule: StepUpRule, act: StepUpAct, where: str, idp: str | None) -> str:
    """What a refused caller does next: in the web UI, the passkey; for `mfa`, signing in
    again (with the IdP, `sekisho login --sso --fresh`) works too."""
    verb = "approving" if act is StepUpAct.APPROVE else "filing"
    head = f"{verb} this needs {rule.phrase}"
    passkey = f"confirm with your passkey in the web UI ({where})"
    if rule.factor is Factor.PASSKEY:
        return f"{head}: {passkey}; register one under Passkeys if you have none"
    again = f"sign in again with {idp} (`sekisho login --sso --fresh`)" if idp else "sign in again"
    return f"{head}: {passkey}, or {again} and retry"
