"""The OCSP responder (RFC 6960): what relying parties ask about one certificate at a time.

"good" only for a certificate the built-in CA issued and that is neither revoked nor on hold;
"revoked" with the time and the reason (certificateHold for a suspended card); "unknown" for
a serial this CA never issued. A request about another CA's certificate is "unauthorized",
one that cannot be read "malformedRequest": the RFC's answers, never an HTTP error page.

Answers without a nonce are cached per serial and state for half their validity, so a
burst of relying parties costs one signature; a changed state is a different cache key,
so a revocation is seen at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta

from sqlalchemy import select

from cardvault.crypto import ocsp as cocsp
from cardvault.crypto import x509 as cx509
from cardvault.crypto.cert_errors import CertificateError
from cardvault.services.pki import ca
from cardvault.services.pki.crl import revocation_of
from cardvault.services.pki.responder import responder
from cardvault.services.system.runtime import Runtime
from cardvault.store.models import Card, Certificate

CONTENT_TYPE = "application/ocsp-response"
_CACHE_SIZE = 4096
_cache: OrderedDict[tuple[object, ...], tuple[bytes, datetime]] = OrderedDict()
_cache_lock = threading.Lock()


def respond(rt: Runtime, request_der: bytes) -> bytes:
    """The DER OCSPResponse for one DER OCSPRequest."""
    try:
        query = cocsp.parse_request(request_der)
    except cocsp.OcspMalformed:
        return cocsp.malformed()
    issuer = next((i for i in ca.signing_cas(rt) if cocsp.names_issuer(query, i.cert)), None)
    if issuer is None:
        return cocsp.unauthorized()
    answer = status_of(rt, query.serial, issuer.cert)
    signer = responder(rt, issuer)
    now = rt.clock().replace(microsecond=0)
    lifetime = timedelta(minutes=rt.settings.ocsp_response_minutes)
    key = (
        cx509.ca_key_id(issuer.cert),
        query.serial,
        query.algorithm.name,
        signer.cert.serial_number,
        answer,
    )
    if query.nonce is None:
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None and now < hit[1] + lifetime / 2:
            return hit[0]
    der = cocsp.build_response(
        query=query,
        answer=answer,
        responder=signer,
        this_update=now,
        next_update=now + lifetime,
    )
    if query.nonce is None:
        with _cache_lock:
            _cache[key] = (der, now)
            _cache.move_to_end(key)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return der


def status_of(rt: Runtime, serial: int, ca_cert: cx509.Certificate) -> cocsp.OcspAnswer:
    """What this CA says about the certificate with ``serial`` (see the module docstring)."""
    key_id = cx509.ca_key_id(ca_cert)
    with rt.db() as session:
        row = session.scalar(
            select(Certificate).where(
                Certificate.serial_hex == cx509.serial_hex(serial),
                Certificate.ca_key_id == key_id,
            )
        )
        if row is None or not _signed_by(row.pem, ca_cert):
            return cocsp.OcspAnswer(status=cocsp.CertStatus.UNKNOWN)
        ended = revocation_of(row, session.get(Card, row.card_id))
        if ended is None:
            return cocsp.OcspAnswer(status=cocsp.CertStatus.GOOD)
        return cocsp.OcspAnswer(
            status=cocsp.CertStatus.REVOKED, revoked_at=ended[0], reason=ended[1]
        )


def _signed_by(pem: str, ca_cert: cx509.Certificate) -> bool:
    try:
        cx509.check_issued_by(cx509.load_certificate_pem(pem.encode()), ca_cert)
    except CertificateError:
        return False
    return True
