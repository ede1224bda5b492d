"""Signing in through the company identity provider (OpenID Connect)."""
