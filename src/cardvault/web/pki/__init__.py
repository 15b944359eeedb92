"""The public PKI endpoints (DESIGN §3.9): CRL, OCSP and the CA certificate, for relying
parties that know nothing of cardvault. No sign-in; the ingress gate lets ``/pki/`` through
from anywhere (web/ingress.py), and each request costs one unit of the ``status`` rate
limit per address, as the JSON status API does. The OCSP responder answers a refusal in its
own protocol, ``tryLater`` (RFC 6960 §2.3), since an OCSP client reads no HTTP 429."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cardvault.crypto import ocsp as cocsp
from cardvault.errors import NotFound
from cardvault.services.pki import ca
from cardvault.services.pki import crl as crls
from cardvault.services.pki import ocsp as responder
from cardvault.services.rate_limits import check as rate_limits
from cardvault.services.rate_limits.errors import RateLimited
from cardvault.services.system.runtime import Runtime
from cardvault.web.client_address import client_address
from cardvault.web.deps import RuntimeDep
from cardvault.web.rate_limit import Bucket, per_address

router = APIRouter(prefix="/pki", tags=["pki"])
_LIMITED = [per_address(Bucket.STATUS)]
_HEX = frozenset("0123456789abcdef")
#: a CRL is cached by relying parties and proxies at most this long (it may change sooner)
_CRL_MAX_AGE = 300


def _key_id(text: str, suffix: str) -> str:
    key_id = text.removesuffix(suffix).lower()
    if not text.endswith(suffix) or not 0 < len(key_id) <= 64 or not set(key_id) <= _HEX:
        raise NotFound("There is no such file here.")
    return key_id


@router.get("/crl/{name}", response_class=Response, dependencies=_LIMITED)
def get_crl(name: str, request: Request, rt: RuntimeDep) -> Response:
    """The CA's full CRL (DER), with an ETag for conditional fetches."""
    doc = crls.current(rt, _key_id(name, ".crl"))
    now = rt.clock()
    fresh_for = int((doc.next_update - now).total_seconds())
    headers = {
        "ETag": doc.etag,
        "Cache-Control": f"public, max-age={max(0, min(_CRL_MAX_AGE, fresh_for))}",
        "Last-Modified": doc.this_update.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Expires": doc.next_update.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
    if request.headers.get("if-none-match") == doc.etag:
        return Response(status_code=304, headers=headers)
    return Response(doc.der, media_type="application/pkix-crl", headers=headers)


@router.get("/ca/{name}", response_class=Response, dependencies=_LIMITED)
def get_ca(name: str, rt: RuntimeDep) -> Response:
    """A CA certificate this service issues (or issued) under, DER (the caIssuers URL)."""
    key_id = _key_id(name, ".crt")
    for cert in ca.issuing_certificates(rt):
        if ca.key_id(cert) == key_id:
            return Response(
                ca.certificate_der(cert),
                media_type="application/pkix-cert",
                headers={"Cache-Control": "public, max-age=86400"},
            )
    raise NotFound("There is no such CA certificate here.")


def _ocsp(der: bytes, *, retry_after: int | None = None) -> Response:
    headers = {"Cache-Control": "no-cache"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(der, media_type=responder.CONTENT_TYPE, headers=headers)


def _admit(request: Request, rt: Runtime) -> Response | None:
    """None when the caller may ask; else the RFC's ``tryLater`` (unsigned, HTTP 200, with
    Retry-After for HTTP-aware clients). Counted before the body is read, as elsewhere."""
    address = client_address(request, rt.settings.trusted_proxies)
    try:
        rate_limits.check_address(rt, Bucket.STATUS, address)
    except RateLimited as refused:
        return _ocsp(cocsp.try_later(), retry_after=refused.retry_after)
    return None


#: what the body limit answers in these paths' own protocol (web/limits.py)
REFUSALS = {"/pki/ocsp": lambda: _ocsp(cocsp.malformed())}


@router.post("/ocsp", response_class=Response)
async def post_ocsp(request: Request, rt: RuntimeDep) -> Response:
    """RFC 6960 §A.1 POST: the DER request is the body."""
    refused = await run_in_threadpool(_admit, request, rt)
    if refused is not None:
        return refused
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cocsp.MAX_REQUEST_BYTES:
            return _ocsp(cocsp.malformed())
    return _ocsp(await run_in_threadpool(responder.respond, rt, bytes(body)))


@router.get("/ocsp/{encoded:path}", response_class=Response)
async def get_ocsp(encoded: str, request: Request, rt: RuntimeDep) -> Response:
    """RFC 6960 §A.1 GET: the URL-encoded base64 of the DER request after the path."""
    refused = await run_in_threadpool(_admit, request, rt)
    if refused is not None:
        return refused
    try:
        der = base64.b64decode(unquote(encoded), validate=True)
    except (binascii.Error, ValueError):
        return _ocsp(cocsp.malformed())
    response = await run_in_threadpool(responder.respond, rt, der)
    return _ocsp(response)
