"""SCIM 2.0 (RFC 7643/7644): what sekisho's `/scim/v2` endpoint speaks, on scim2-models."""
