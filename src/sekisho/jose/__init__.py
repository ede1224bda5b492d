"""JOSE as sekisho uses it across features: issuers' public keys (JWKS) fetched and cached."""
