"""The model's shared_signals section: the one SSF transmitter sekisho believes, and what its
events do."""

from __future__ import annotations

import re
from datetime import timedelta
from textwrap import dedent, indent

import pytest
from test_model_notifications import DOCS, EXAMPLE, found, line_of

from sekisho.domain.errors import InvalidModel
from sekisho.domain.shared_signals import SharedSignals, SignalReceiver, SignalRule
from sekisho.model import check_text, load_text

RECEIVE = """\
receive:
  issuer: https://idp.example.com
  jwks_uri: https://idp.example.com/jwks
"""


def with_signals(body: str) -> str:
    return EXAMPLE + "\nshared_signals:\n" + indent(dedent(body), "  ")


def refused(text: str) -> list[tuple[str, int, str]]:
    """The problems of `text`, after checking that nothing of it loads."""
    with pytest.raises(InvalidModel):
        load_text(text, "n.yaml")
    return found(text)


def test_the_full_section_loads_into_the_model() -> None:
    model = load_text(
        with_signals(
            """\
            receive:
              issuer: https://idp.example.com
              jwks_uri: https://idp.example.com/jwks
              audience: https://sekisho.example.com
              token_env: SEKISHO_SSF_PUSH_TOKEN
              on_session_revoked: ignore
              on_credential_change: lock
              lock_for: 8h
            """
        )
    )
    assert model.shared_signals == SharedSignals(
        receive=SignalReceiver(
            issuer="https://idp.example.com",
            jwks_uri="https://idp.example.com/jwks",
            audience="https://sekisho.example.com",
            token_env="SEKISHO_SSF_PUSH_TOKEN",
            on_session_revoked=SignalRule.IGNORE,
            on_credential_change=SignalRule.LOCK,
            lock_for=timedelta(hours=8),
        )
    )


def test_optional_fields_default_to_locking_until_removed() -> None:
    receive = load_text(with_signals(RECEIVE)).shared_signals.receive
    assert receive == SignalReceiver("https://idp.example.com", "https://idp.example.com/jwks")
    assert (receive.on_session_revoked, receive.on_credential_change) == (
        SignalRule.LOCK,
        SignalRule.LOCK,
    )
    assert (receive.audience, receive.token_env, receive.lock_for) == (None, None, None)


@pytest.mark.parametrize("section", ["", "\nshared_signals:\n", "\nshared_signals: {}\n"])
def test_without_a_receiver_no_signals_are_received(section: str) -> None:
    assert load_text(EXAMPLE + section).shared_signals.receive is None


def test_the_documented_example_is_valid() -> None:
    docs = DOCS.read_text("utf-8")
    block = re.search(r"```yaml\n(.*?)```", docs[docs.index("### `shared_signals`") :], re.DOTALL)
    assert block is not None
    receive = load_text(EXAMPLE + "\n" + block.group(1)).shared_signals.receive
    assert receive is not None
    assert receive.token_env == "SEKISHO_SSF_PUSH_TOKEN"
    assert receive.lock_for == timedelta(hours=8)


@pytest.mark.parametrize(
    "jwks_uri",
    ["http://localhost:8080/jwks", "http://127.0.0.1/jwks", "http://127.9.0.1/j", "http://[::1]/j"],
)
def test_plain_http_keys_only_from_loopback(jwks_uri: str) -> None:
    text = with_signals(RECEIVE.replace("https://idp.example.com/jwks", jwks_uri))
    assert check_text(text) == []
    receive = load_text(text).shared_signals.receive
    assert receive is not None
    assert receive.jwks_uri == jwks_uri


@pytest.mark.parametrize(
    "jwks_uri", ["http://idp.example.com/jwks", "http://10.0.0.5/jwks", "http://[::2]/j"]
)
def test_plain_http_keys_from_elsewhere_are_refused(jwks_uri: str) -> None:
    text = with_signals(RECEIVE.replace("https://idp.example.com/jwks", jwks_uri))
    path = "shared_signals.receive.jwks_uri"
    assert refused(text) == [("jwks_uri_transport", line_of(text, "jwks_uri:"), path)]
    (problem,) = check_text(text)
    assert "plain http" in problem.message
    assert "https" in problem.message


@pytest.mark.parametrize("jwks_uri", ["idp.example.com/jwks", "ftp://idp.example.com/jwks"])
def test_a_jwks_uri_that_is_not_a_url(jwks_uri: str) -> None:
    text = with_signals(RECEIVE.replace("https://idp.example.com/jwks", jwks_uri))
    path = "shared_signals.receive.jwks_uri"
    assert refused(text) == [("url_format", line_of(text, "jwks_uri:"), path)]
    assert "is not an http(s) URL" in check_text(text)[0].message


def test_an_unknown_rule_names_the_choices() -> None:
    text = with_signals(RECEIVE + "  on_session_revoked: nuke\n")
    path = "shared_signals.receive.on_session_revoked"
    assert refused(text) == [("invalid_choice", line_of(text, "nuke"), path)]
    message = check_text(text)[0].message
    assert "'lock' or 'ignore'" in message
    assert "'nuke'" in message


@pytest.mark.parametrize(
    ("key", "meant"), [("lock_four", "lock_for"), ("on_session_revoke", "on_session_revoked")]
)
def test_a_mistyped_key_suggests_the_real_one(key: str, meant: str) -> None:
    text = with_signals(RECEIVE + f"  {key}: lock\n")
    path = f"shared_signals.receive.{key}"
    assert refused(text) == [("unknown_field", line_of(text, f"{key}:"), path)]
    message = check_text(text)[0].message
    assert f"shared_signals.receive has no field {key!r}; did you mean {meant!r}?" in message


def test_a_mistyped_receive_is_an_unknown_field_too() -> None:
    text = with_signals(RECEIVE.replace("receive:", "recieve:"))
    assert refused(text) == [("unknown_field", line_of(text, "recieve:"), "shared_signals.recieve")]
    assert "did you mean 'receive'?" in check_text(text)[0].message


@pytest.mark.parametrize(
    "value", ["my push token 123", "https://idp.example.com/token", "SEKISHO-SSF-TOKEN"]
)
def test_token_env_must_name_a_variable_and_a_secret_is_never_echoed(value: str) -> None:
    text = with_signals(RECEIVE + f'  token_env: "{value}"\n')
    path = "shared_signals.receive.token_env"
    assert refused(text) == [("env_name_format", line_of(text, "token_env:"), path)]
    (problem,) = check_text(text)
    assert "name of an environment variable" in problem.message
    assert value not in str(problem)


@pytest.mark.parametrize("lock_for", ["10s", "59s", "91d"])
def test_lock_for_outside_a_minute_to_ninety_days(lock_for: str) -> None:
    text = with_signals(RECEIVE + f"  lock_for: {lock_for}\n")
    path = "shared_signals.receive.lock_for"
    assert refused(text) == [("lock_for_range", line_of(text, "lock_for:"), path)]
    assert f"1m to 90d, not {lock_for}" in check_text(text)[0].message


@pytest.mark.parametrize("lock_for", ["1m", "90d"])
def test_lock_for_bounds_are_allowed(lock_for: str) -> None:
    receive = load_text(with_signals(RECEIVE + f"  lock_for: {lock_for}\n")).shared_signals.receive
    assert receive is not None
    assert receive.lock_for in (timedelta(minutes=1), timedelta(days=90))


@pytest.mark.parametrize("missing", ["issuer", "jwks_uri"])
def test_issuer_and_jwks_uri_are_required(missing: str) -> None:
    body = "\n".join(line for line in RECEIVE.splitlines() if missing not in line) + "\n"
    text = with_signals(body)
    path = f"shared_signals.receive.{missing}"
    assert refused(text) == [("required", line_of(text, "receive:"), path)]
    assert f"{missing} is required in shared_signals.receive" in check_text(text)[0].message


def test_an_empty_audience_is_refused() -> None:
    text = with_signals(RECEIVE + '  audience: ""\n')
    path = "shared_signals.receive.audience"
    assert refused(text) == [("required", line_of(text, "audience:"), path)]
