"""Shared Signals (OpenID SSF 1.0), both ways.

Transmitter: sekisho publishes its configuration (`/.well-known/ssf-configuration`) and its
public keys, lets a receiver register a push stream (RFC 8935), and pushes a signed Security
Event Token (RFC 8417; subjects per RFC 9493) with a CAEP `session-revoked` event each time a
grant's access ends or a user is locked, so a downstream app ends its own sessions too. Each
SET is a row of the outbox: delivered once, retried, shown by `sekisho notify status`.

Receiver: the company's IdP pushes SETs to `POST /api/v1/ssf/receive`; their signatures are
checked against the issuer's JWKS named in the model, with `aud`, `iat` and `jti` (replay)
checked too, and `session-revoked` or `credential-change` applies the model's rule.
"""
