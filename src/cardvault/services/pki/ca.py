"""The built-in issuing CA: its key sealed under the master key, its certificate in the clear.

Files under ``<data>/ca``: ``ca-cert.pem`` and ``ca-key.sealed``. An operator may bring an
existing CA (an intermediate of the national PKI, say) instead of the generated one; the pair
is checked before anything is written. A CA that is replaced keeps its certificate under
``previous/`` (the key goes): cards it certified keep their certificates, and the status API
must still recognise them as issued here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.x509 import Certificate

from cardvault.crypto import x509 as cx509
from cardvault.crypto.aead import aad, wipe
from cardvault.errors import Conflict, IntegrityError
from cardvault.keystore.files import write_private
from cardvault.keystore.provider import DataDirDamaged, MasterKey
from cardvault.services.pki.errors import CaMissing
from cardvault.services.system.runtime import Runtime
from cardvault.store.types import utcnow

_AAD = aad("ca-key", 1)


@dataclass(frozen=True, kw_only=True)
class IssuingCa:
    """The issuing CA: its certificate and opened key."""

    key: cx509.PrivateKey
    cert: Certificate

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate as PEM."""
        return cx509.certificate_to_pem(self.cert)


def ca_dir(data_dir: Path) -> Path:
    """Where the CA lives in the data directory."""
    return data_dir / "ca"


def _paths(data_dir: Path) -> tuple[Path, Path]:
    d = ca_dir(data_dir)
    return d / "ca-cert.pem", d / "ca-key.sealed"


def exists(data_dir: Path) -> bool:
    """Whether a CA has been set up."""
    return _paths(data_dir)[0].exists()


def create(
    data_dir: Path,
    master: MasterKey,
    *,
    common_name: str,
    organisation: str | None = None,
    force: bool = False,
) -> IssuingCa:
    """Generate a new root CA (``cardvault ca init``)."""
    key, cert = cx509.create_ca(common_name=common_name, organisation=organisation, now=utcnow())
    return _store(data_dir, master, key, cert, force=force)


def import_existing(
    data_dir: Path, master: MasterKey, *, key_pem: bytes, cert_pem: bytes, force: bool = False
) -> IssuingCa:
    """Adopt an operator's CA; refuses a certificate that does not match its key."""
    key, cert = cx509.load_ca(key_pem, cert_pem)
    return _store(data_dir, master, key, cert, force=force)


def _store(
    data_dir: Path,
    master: MasterKey,
    key: cx509.PrivateKey,
    cert: Certificate,
    *,
    force: bool,
) -> IssuingCa:
    cert_path, key_path = _paths(data_dir)
    if cert_path.exists() and not force:
        raise Conflict(
            "An issuing CA already exists in this data directory.",
            remedy="Pass --force to replace it (cards issued so far keep theirs).",
        )
    cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if cert_path.exists():
        _keep_previous(data_dir, cert_path.read_bytes())
    pem = cx509.ca_key_to_pem(key)
    try:
        write_private(key_path, master.seal(pem, aad=_AAD))
    finally:
        wipe(pem)
    write_private(cert_path, cx509.certificate_to_pem(cert))
    cert_path.chmod(0o644)
    return IssuingCa(key=key, cert=cert)


def load(rt: Runtime) -> IssuingCa:
    """The issuing CA, its key opened with the master key; raises CaMissing."""
    cert_path, key_path = _paths(rt.data_dir)
    if not (cert_path.exists() and key_path.exists()):
        raise CaMissing(
            "This service has no issuing CA.",
            remedy="Run `cardvault ca init`, or issue with --external-ca.",
        )
    stamp = ("ca", key_path.stat().st_mtime_ns, cert_path.stat().st_mtime_ns)
    return rt.memo(stamp, lambda: _load(cert_path, key_path, rt.master_key))


def _load(cert_path: Path, key_path: Path, master: MasterKey) -> IssuingCa:
    try:
        pem = master.open(key_path.read_bytes(), aad=_AAD)
    except IntegrityError as exc:
        raise DataDirDamaged(
            f"The issuing CA key {key_path} is damaged: it does not open under this data "
            "directory's master key.",
            remedy="Restore the data directory from a backup.",
        ) from exc
    try:
        key, cert = cx509.load_ca(pem, cert_path.read_bytes())
    finally:
        wipe(pem)
    return IssuingCa(key=key, cert=cert)


def _keep_previous(data_dir: Path, cert_pem: bytes) -> None:
    cert = cx509.load_certificate_pem(cert_pem)
    folder = ca_dir(data_dir) / "previous"
    folder.mkdir(exist_ok=True, mode=0o700)
    name = cx509.certificate_summary(cert)["fingerprint_sha256"]
    write_private(folder / f"{name}.pem", cert_pem)
    (folder / f"{name}.pem").chmod(0o644)


def issuing_certificates(rt: Runtime) -> tuple[Certificate, ...]:
    """Every CA certificate this service has issued under: the current one first, then
    those it replaced. Empty without a CA (an external-CA-only deployment)."""
    cert_path, _ = _paths(rt.data_dir)
    files = [cert_path] if cert_path.exists() else []
    files += sorted((ca_dir(rt.data_dir) / "previous").glob("*.pem"))
    stamp = ("ca-certs", *((str(f), f.stat().st_mtime_ns) for f in files))
    return rt.memo(stamp, lambda: tuple(cx509.load_certificate_pem(f.read_bytes()) for f in files))


def export_pem(data_dir: Path) -> bytes:
    """The CA certificate as PEM; raises CaMissing."""
    cert_path, _ = _paths(data_dir)
    if not cert_path.exists():
        raise CaMissing("This service has no issuing CA.", remedy="Run `cardvault ca init`.")
    return cert_path.read_bytes()


def key_id(cert: Certificate) -> str:
    """The CA's key identifier in hex (what its CRL and caIssuers URLs carry)."""
    return cx509.ca_key_id(cert)


def certificate_der(cert: Certificate) -> bytes:
    """A CA certificate in DER, as the caIssuers URL serves it."""
    return cx509.certificate_to_der(cert)
