"""The relying party's HTTP service: challenge, verify, ticket.

Protocol (see docs/protocols/relying-party.md):
``GET  /login``  → ``{"challenge_id", "challenge" (base64, 32 bytes), "origin", "expires_at"}``
``POST /login``  ``{"challenge_id", "certificate" (PEM), "signature" (base64), "scheme"}``
                 → ``{"ticket" (JWT, ES256), "subject", "user_id", "expires_at"}``
The card signs SHA-256("cardvault-rp-authentication-v1" 0x00 origin 0x00 challenge).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography import x509
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from joserfc import jwt
from joserfc.jwk import ECKey
from pydantic import BaseModel, Field

from cardvault.crypto import x509 as cx509
from cardvault.crypto.rp_challenge import challenge_digest
from cardvault.errors import AuthenticationFailed, CardvaultError, InvalidInput
from cardvault.json_types import JsonObject
from cardvault.relying_party import verify

CHALLENGE_SECONDS = 120
TICKET_SECONDS = 3600


@dataclass(kw_only=True)
class RpConfig:
    origin: str
    ca_cert: x509.Certificate
    cardvault_url: str
    cardvault_verify: Any = True
    ticket_key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256"))


class Proof(BaseModel):
    challenge_id: str = Field(max_length=64)
    certificate: str = Field(max_length=16384)
    signature: str = Field(max_length=2048)
    scheme: str = Field(max_length=20)


class _Challenges:
    """Outstanding challenges: single use, short-lived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[bytes, float]] = {}

    def issue(self) -> tuple[str, bytes, float]:
        cid, value, expires = (
            secrets.token_urlsafe(16),
            secrets.token_bytes(32),
            time.time() + CHALLENGE_SECONDS,
        )
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if v[1] > time.time()}
            self._items[cid] = (value, expires)
        return cid, value, expires

    def take(self, cid: str) -> bytes:
        with self._lock:
            item = self._items.pop(cid, None)
        if item is None or item[1] < time.time():
            raise verify.ProofRejected("The challenge is unknown, used or expired.")
        return item[0]


def _status(exc: CardvaultError) -> int:
    """The example relying party is not cardvault's service, so it does not use
    ``web/errors.py``: it refuses a proof (401) or malformed input (422), else fails (500)."""
    if isinstance(exc, AuthenticationFailed):
        return 401
    return 422 if isinstance(exc, InvalidInput) else 500


def create_rp_app(config: RpConfig) -> FastAPI:
    app = FastAPI(title="cardvault example relying party")
    challenges = _Challenges()

    @app.exception_handler(CardvaultError)
    async def _error(_request: Any, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CardvaultError)
        return JSONResponse({"code": exc.code, "title": exc.message}, status_code=_status(exc))

    @app.get("/login")
    def challenge() -> dict[str, Any]:
        cid, value, expires = challenges.issue()
        return {
            "challenge_id": cid,
            "challenge": base64.b64encode(value).decode(),
            "origin": config.origin,
            "expires_at": expires,
        }

    @app.post("/login")
    def login(proof: Proof) -> dict[str, Any]:
        value = challenges.take(proof.challenge_id)
        cert = verify.parse_certificate(proof.certificate)
        verify.check_certificate(cert, config.ca_cert, datetime.now(UTC))
        verify.check_signature(
            cert, proof.signature, challenge_digest(config.origin, value), proof.scheme
        )
        _check_status(config, cert)
        return _ticket(config, cert)

    @app.get("/.well-known/jwks.json")
    def jwks() -> dict[str, Any]:
        return {"keys": [config.ticket_key.as_dict(private=False)]}

    return app


def _check_status(config: RpConfig, cert: x509.Certificate) -> None:
    fingerprint = cx509.certificate_summary(cert)["fingerprint_sha256"]
    try:
        response = httpx.get(
            f"{config.cardvault_url}/api/v1/certificates/status",
            params={"fingerprint": fingerprint},
            verify=config.cardvault_verify,
            timeout=10,
        )
        status = response.raise_for_status().json().get("status")
    except httpx.HTTPError as exc:
        raise verify.ProofRejected("Cannot check the certificate's status with cardvault.") from exc
    if status != "good":
        raise verify.ProofRejected(f"The certificate is {status}.")


def _ticket(config: RpConfig, cert: x509.Certificate) -> JsonObject:
    now = int(time.time())
    subject = cx509.name_text(cert.subject)
    user_id = verify.subject_user_id(cert)
    claims = {
        "iss": config.origin,
        "sub": user_id or subject,
        "name": subject,
        "iat": now,
        "exp": now + TICKET_SECONDS,
    }
    token = jwt.encode(
        {"alg": "ES256", "kid": config.ticket_key.thumbprint()}, claims, config.ticket_key
    )
    return {
        "ticket": token,
        "subject": subject,
        "user_id": user_id,
        "expires_at": now + TICKET_SECONDS,
    }
