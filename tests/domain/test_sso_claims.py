"""What an ID token's claims may carry before sekisho keeps them (the groups claim is stored
per user at each sign-in)."""

from __future__ import annotations

import pytest

from sekisho.domain.sso import MAX_GROUPS, OidcSettings, UnknownPerson, groups_of_claims

SETTINGS = OidcSettings(issuer="https://idp.example", client_id="sekisho", groups_claim="groups")


def test_a_groups_claim_is_kept_as_the_names_it_lists() -> None:
    assert groups_of_claims(SETTINGS, {"groups": ["eng", "Leads"]}) == ("eng", "Leads")
    assert groups_of_claims(SETTINGS, {}) == ()


@pytest.mark.parametrize(
    "groups",
    [
        "eng",
        ["eng", 7],
        [f"group{i}" for i in range(MAX_GROUPS + 1)],
        ["x" * 257],
    ],
)
def test_a_groups_claim_that_is_not_a_short_list_of_names_refuses_the_sign_in(
    groups: object,
) -> None:
    with pytest.raises(UnknownPerson, match="groups claim"):
        groups_of_claims(SETTINGS, {"groups": groups})
