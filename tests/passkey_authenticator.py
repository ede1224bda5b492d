"""A software passkey for tests that run without a browser: answers WebAuthn options exactly as
a platform authenticator and the browser together do (W3C WebAuthn Level 3: authenticator
data, "none" attestation, ES256 over authData || SHA-256(clientDataJSON), and the JSON of
`PublicKeyCredential.toJSON()`). The browser tests use Chromium's own virtual authenticator.

Each knob is an attack a test can make: another origin, no user verification, a counter that
goes backwards (a cloned key), a signature over something else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftPasskey:
    origin: str
    user_verified: bool = True
    counter: int = 0
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def create(self, options_json: str) -> str:
        """The answer to navigator.credentials.create() with these options."""
        options = json.loads(options_json)
        client_data = self._client_data("webauthn.create", options["challenge"])
        numbers = self.key.public_key().public_numbers()
        cose = cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32), -3: numbers.y.to_bytes(32)}
        )
        attested = bytes(16) + len(self.credential_id).to_bytes(2) + self.credential_id + cose
        auth_data = self._auth_data(options["rp"]["id"], AT) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        response = {
            "clientDataJSON": b64url(client_data),
            "attestationObject": b64url(attestation),
            "transports": ["internal"],
        }
        return self._credential(response)

    def get(self, options_json: str, *, rp_id: str | None = None) -> str:
        """The answer to navigator.credentials.get() with these options."""
        options = json.loads(options_json)
        client_data = self._client_data("webauthn.get", options["challenge"])
        self.counter += 1
        auth_data = self._auth_data(rp_id or options["rpId"], 0)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        response = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
            "userHandle": None,
        }
        return self._credential(response)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        return json.dumps(data).encode()

    def _auth_data(self, rp_id: str, extra: int) -> bytes:
        flags = UP | (UV if self.user_verified else 0) | extra
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + self.counter.to_bytes(4)

    def _credential(self, response: dict[str, Any]) -> str:
        ident = b64url(self.credential_id)
        return json.dumps(
            {
                "id": ident,
                "rawId": ident,
                "type": "public-key",
                "response": response,
                "clientExtensionResults": {},
                "authenticatorAttachment": "platform",
            }
        )
