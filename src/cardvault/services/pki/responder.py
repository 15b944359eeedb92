"""The delegated OCSP responder: a P-256 key the CA certifies for OCSP signing only.

Key and certificate are one file, ``<data>/ca/ocsp-responder.sealed``, sealed under the
master key like the CA key (so two instances replacing it at once cannot pair one's key
with the other's certificate). The certificate lives ``RESPONDER_DAYS``; a new one is made
when a third of that is left, when the CA is replaced, or when the file is missing.
"""

from __future__ import annotations

from datetime import timedelta

from cardvault.crypto import ocsp as cocsp
from cardvault.crypto import x509 as cx509
from cardvault.crypto.aead import aad, wipe
from cardvault.crypto.cert_errors import CertificateUntrustedIssuer
from cardvault.errors import IntegrityError
from cardvault.keystore.files import write_private
from cardvault.services.pki import ca
from cardvault.services.system.runtime import Runtime

RESPONDER_DAYS = 30
_AAD = aad("ocsp-responder", 1)
_SEPARATOR = b"\n--cert--\n"


def responder(rt: Runtime, issuer: ca.IssuingCa | None = None) -> cocsp.Responder:
    """The responder for ``issuer`` (by default the current CA), made or renewed as
    needed. A rotated CA that keeps its key has its own (``ocsp-responder-<key id>``)."""
    issuing = ca.load(rt)
    issuer = issuer or issuing
    name = "ocsp-responder.sealed"
    if issuer.cert != issuing.cert:
        name = f"ocsp-responder-{ca.key_id(issuer.cert)}.sealed"
    path = ca.ca_dir(rt.data_dir) / name
    if path.exists():
        stamp = ("ocsp-responder", str(path), path.stat().st_mtime_ns)
        current = rt.memo(stamp, lambda: _load(rt, path.read_bytes()))
        if current is not None and _fit(rt, current, issuer):
            return current
    made = _make(rt, issuer)
    write_private(path, _seal(rt, made))
    return made


def _fit(rt: Runtime, current: cocsp.Responder, issuer: ca.IssuingCa) -> bool:
    cert = current.cert
    left = cert.not_valid_after_utc - rt.clock()
    if left < timedelta(days=RESPONDER_DAYS / 3) and cert.not_valid_after_utc < (
        issuer.cert.not_valid_after_utc
    ):
        return False
    try:
        cx509.check_issued_by(cert, issuer.cert)
    except CertificateUntrustedIssuer:
        return False
    return left > timedelta(0)


def _make(rt: Runtime, issuer: ca.IssuingCa) -> cocsp.Responder:
    key = cocsp.new_responder_key()
    cert = cocsp.responder_certificate(
        ca_key=issuer.key,
        ca_cert=issuer.cert,
        public_key=key.public_key(),
        now=rt.clock(),
        days=RESPONDER_DAYS,
    )
    return cocsp.Responder(key=key, cert=cert)


def _seal(rt: Runtime, made: cocsp.Responder) -> bytes:
    pem = cx509.ca_key_to_pem(made.key)
    try:
        return rt.master_key.seal(
            bytes(pem) + _SEPARATOR + cx509.certificate_to_pem(made.cert), aad=_AAD
        )
    finally:
        wipe(pem)


def _load(rt: Runtime, blob: bytes) -> cocsp.Responder | None:
    """The sealed responder, or None when it does not open (then a new one is made)."""
    try:
        plain = rt.master_key.open(blob, aad=_AAD)
    except IntegrityError:
        return None
    try:
        key_pem, _, cert_pem = bytes(plain).partition(_SEPARATOR)
        key = cocsp.load_responder_key(key_pem)
        cert = cx509.load_certificate_pem(cert_pem)
    finally:
        wipe(plain)
    if key is None:
        return None
    return cocsp.Responder(key=key, cert=cert)
