"""Card operations in a card session: sign, certificates; and certificate status for RPs."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from cardvault.services.cards import operations as card_operations
from cardvault.services.pki import ca, renewal
from cardvault.services.pki import status as certificate_status
from cardvault.services.system.runtime import Actor
from cardvault.web.client_address import actor_for
from cardvault.web.deps import BearerToken, RuntimeDep
from cardvault.web.jose import in_one_trip, jose_openapi, opened, read_jose, sealed
from cardvault.web.rate_limit import Bucket, per_address

router = APIRouter(prefix="/api/v1", tags=["card"])


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} must be base64") from exc


class SignIn(BaseModel):
    token: str = Field(min_length=10, max_length=200)
    session_key: str = Field(min_length=40, max_length=60)
    key: Literal["authentication", "content-commitment", "content_commitment"]
    digest: str = Field(min_length=40, max_length=100, description="base64 of the digest")
    hash: Literal["sha256", "sha384", "sha512"] = "sha256"
    scheme: Literal["rsa-pkcs1v15", "rsa-pss", "ecdsa"] | None = None
    passcode: str | None = Field(default=None, max_length=256)

    @field_validator("digest", "session_key")
    @classmethod
    def _base64(cls, value: str) -> str:
        _b64(value, "value")
        return value


class SignOut(BaseModel):
    signature: str
    scheme: str
    certificate: str


@router.post("/card/sign", openapi_extra=jose_openapi(SignIn, SignOut), response_class=Response)
async def sign(request: Request, rt: RuntimeDep) -> Response:
    """Sign a digest with the authentication or content-commitment key (encrypted both ways)."""

    def sign_with(actor: Actor, body: SignIn) -> SignOut:
        req = card_operations.SignRequest(
            token=body.token,
            session_key=_b64(body.session_key, "session_key"),
            key=body.key,
            digest=_b64(body.digest, "digest"),
            hash_alg=body.hash,
            scheme=body.scheme,
            passcode=body.passcode,
        )
        result = card_operations.sign(rt, actor, req)
        return SignOut(
            signature=base64.b64encode(result.signature).decode(),
            scheme=result.scheme,
            certificate=result.certificate_pem,
        )

    return await in_one_trip(request, rt, SignIn, sign_with)


class RenewIn(BaseModel):
    token: str = Field(min_length=10, max_length=200)
    session_key: str = Field(min_length=40, max_length=60)

    @field_validator("session_key")
    @classmethod
    def _base64(cls, value: str) -> str:
        _b64(value, "value")
        return value


@router.post("/card/renew", openapi_extra=jose_openapi(RenewIn), response_class=Response)
async def renew(request: Request, rt: RuntimeDep) -> Response:
    """The holder renews the card: new keys and certificates (encrypted both ways)."""
    token, actor = await read_jose(request), actor_for(request, rt)

    def open_and_renew() -> tuple[renewal.Renewed, bytearray]:
        body, rkey = opened(rt, token, RenewIn)
        key = _b64(body.session_key, "session_key")
        return renewal.renew_in_session(rt, actor, body.token, key), rkey

    result, rkey = await run_in_threadpool(open_and_renew)
    return sealed(
        rkey,
        {"serial": result.serial, "new_keys": result.new_keys, "certificates": result.certificates},
    )


class CertificatesOut(BaseModel):
    certificates: dict[str, str] = Field(description="the card's certificates (PEM) by usage")
    ca: str = Field(description="the issuing CA certificate (PEM)")


@router.get("/card/certificates")
def certificates(
    request: Request,
    rt: RuntimeDep,
    token: BearerToken,
) -> CertificatesOut:
    """The card's certificates and the issuing CA certificate (PEM)."""
    certs = card_operations.certificates(rt, actor_for(request, rt), token)
    return CertificatesOut(certificates=certs, ca=ca.export_pem(rt.data_dir).decode())


@router.get("/certificates/status", dependencies=[per_address(Bucket.STATUS)])
def cert_status(
    rt: RuntimeDep, fingerprint: Annotated[str, Query(max_length=100)]
) -> dict[str, object]:
    """Whether a card certificate is still good (for relying parties)."""
    return certificate_status.status_by_fingerprint(rt, fingerprint)


@router.get("/ca")
def ca_certificate(rt: RuntimeDep) -> Response:
    """The issuing CA certificate, for relying parties' trust stores."""
    return Response(ca.export_pem(rt.data_dir), media_type="application/x-pem-file")
