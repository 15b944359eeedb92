"""The CA's PIV content signer (DESIGN §3.8 revised): it signs the CHUID of every card whose
applet the service builds, as SP 800-73-4 has the card issuer do.

Files beside the CA's under ``<data>/ca``: ``content-signer-cert.pem`` and
``content-signer-key.sealed`` (the key sealed under the master key). Made on first use and
again when the CA is replaced (a signer certified by another CA key is not used) or when the
certificate has expired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cardvault.crypto import keys as ckeys
from cardvault.crypto import x509 as cx509
from cardvault.crypto.aead import aad, wipe
from cardvault.crypto.content_signing import issue_content_signer, sign_chuid
from cardvault.crypto.x509 import Certificate
from cardvault.errors import CardvaultError
from cardvault.keystore.files import write_private
from cardvault.services.pki import ca
from cardvault.services.pki.errors import CaMissing
from cardvault.services.system.runtime import Runtime

__all__ = ["ContentSigner", "chuid_signer", "load_or_create", "when_needed"]

_AAD = aad("piv-content-signer-key", 1)


@dataclass(frozen=True, kw_only=True)
class ContentSigner:
    """The CA's PIV content signer: the key and certificate that sign CHUIDs."""

    key: ckeys.PrivateKey
    cert: Certificate


def _paths(rt: Runtime) -> tuple[Path, Path]:
    folder = ca.ca_dir(rt.data_dir)
    return folder / "content-signer-cert.pem", folder / "content-signer-key.sealed"


def load_or_create(rt: Runtime) -> ContentSigner:
    """The current content signer; CaMissing when the service has no CA."""
    issuer = ca.load(rt)
    cert_path, key_path = _paths(rt)
    if cert_path.exists() and key_path.exists():
        current = _load(rt, cert_path, key_path)
        if _usable(current, issuer.cert, rt):
            return current
    key, cert = issue_content_signer(ca_key=issuer.key, ca_cert=issuer.cert, now=rt.clock())
    pkcs8 = ckeys.private_key_to_pkcs8(key)
    try:
        write_private(key_path, rt.master_key.seal(pkcs8, aad=_AAD))
    finally:
        wipe(pkcs8)
    write_private(cert_path, cx509.certificate_to_pem(cert))
    cert_path.chmod(0o644)
    return ContentSigner(key=key, cert=cert)


def _load(rt: Runtime, cert_path: Path, key_path: Path) -> ContentSigner:
    def load() -> ContentSigner:
        pkcs8 = rt.master_key.open(key_path.read_bytes(), aad=_AAD)
        try:
            key = ckeys.load_private_key(pkcs8, trusted=True)
        finally:
            wipe(pkcs8)
        return ContentSigner(key=key, cert=cx509.load_certificate_pem(cert_path.read_bytes()))

    stamp = ("content-signer", key_path.stat().st_mtime_ns, cert_path.stat().st_mtime_ns)
    return rt.memo(stamp, load)


def _usable(signer: ContentSigner, ca_cert: Certificate, rt: Runtime) -> bool:
    try:
        cx509.verify_chain(signer.cert, ca_cert, rt.clock())
    except CardvaultError:
        return False
    return True


def chuid_signer(rt: Runtime) -> Callable[[bytes], bytes] | None:
    """A function signing CHUID contents, or None when there is no CA to sign for."""
    try:
        signer = load_or_create(rt)
    except CaMissing:
        return None
    return lambda content: sign_chuid(content, key=signer.key, cert=signer.cert)


def when_needed(rt: Runtime) -> Callable[[bytes], bytes]:
    """A CHUID signer that loads the content signer only when a CHUID is signed (most reader
    links find their CHUID current); it signs nothing (empty) when there is no CA."""

    def sign(content: bytes) -> bytes:
        signer = chuid_signer(rt)
        return signer(content) if signer is not None else b""

    return sign
