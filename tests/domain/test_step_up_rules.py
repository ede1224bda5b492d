"""Which proofs meet a step-up rule, and which ID tokens say MFA (RFC 8176 method values)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sekisho.domain.step_up import Factor, Proof, ProofMethod, StepUpRule, fresh_proof, says_mfa

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
PASSKEY = StepUpRule(within=timedelta(minutes=5), factor=Factor.PASSKEY)
MFA = StepUpRule(within=timedelta(minutes=5), factor=Factor.MFA)


@pytest.mark.parametrize(
    ("amr", "mfa"),
    [
        (["pwd", "mfa"], True),  # Entra ID
        (["pwd", "otp"], True),  # a password and a one-time code
        (["hwk", "fpt"], True),  # a security key and a fingerprint
        (["pwd"], False),
        (["otp", "sms"], False),  # two possession factors are one kind
        ([], False),  # Google sends no amr at all
    ],
)
def test_an_id_token_says_mfa_when_it_names_mfa_or_two_kinds_of_factor(
    amr: list[str], mfa: bool
) -> None:
    assert says_mfa(amr) is mfa


def test_a_sign_in_never_meets_a_passkey_rule_but_a_passkey_meets_mfa() -> None:
    sign_in = Proof(ProofMethod.PASSWORD_TOTP, NOW - timedelta(minutes=1))
    passkey = Proof(ProofMethod.PASSKEY, NOW - timedelta(minutes=2))
    assert fresh_proof(PASSKEY, [sign_in], NOW) is None
    assert fresh_proof(PASSKEY, [sign_in, passkey], NOW) == passkey
    assert fresh_proof(MFA, [sign_in, passkey], NOW) == sign_in  # the newest


def test_a_proof_is_fresh_for_exactly_within_and_never_from_the_future() -> None:
    edge = Proof(ProofMethod.PASSKEY, NOW - timedelta(minutes=5))
    stale = Proof(ProofMethod.PASSKEY, NOW - timedelta(minutes=5, seconds=1))
    ahead = Proof(ProofMethod.PASSKEY, NOW + timedelta(minutes=1))
    assert fresh_proof(PASSKEY, [edge], NOW) == edge
    assert fresh_proof(PASSKEY, [stale, ahead], NOW) is None
