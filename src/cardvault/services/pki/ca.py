"""The built-in issuing CA: its key sealed under the master key or held in the HSM, its
certificate in the clear.

Files under ``<data>/ca``: ``ca-cert.pem`` and either ``ca-key.sealed`` or, when the key is
in the HSM (``keystore.pkcs11_ca``), ``ca-key.pkcs11.json`` naming the token and label. An
operator may bring an existing CA (an intermediate of the national PKI, say) instead of the
generated one; the pair is checked before anything is written. A CA that is replaced keeps
its certificate under ``previous/`` (the key goes): cards it certified keep their
certificates, and the status API must still recognise them as issued here.

A CA that is *rotated* (``cardvault ca rotate``, issue 20) keeps its key too, as
``previous/<fingerprint>.key.sealed`` (or ``.pkcs11.json`` when it is in the HSM): new
certificates and renewals come from the new CA, while the old key keeps re-signing its own
CRL and certifying its OCSP responder until the last certificate it issued has expired
(``retire_previous`` then shreds it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cardvault.crypto import x509 as cx509
from cardvault.crypto.aead import aad, wipe
from cardvault.crypto.x509 import Certificate
from cardvault.errors import Conflict, IntegrityError
from cardvault.keystore import pkcs11_ca
from cardvault.keystore.files import shred, write_private
from cardvault.keystore.pkcs11 import Pkcs11Config
from cardvault.keystore.provider import DataDirDamaged, MasterKey
from cardvault.services.pki.errors import CaMissing
from cardvault.services.system.runtime import Runtime, hsm_config
from cardvault.store.types import utcnow

_AAD = aad("ca-key", 1)


@dataclass(frozen=True, kw_only=True)
class IssuingCa:
    """The issuing CA: its certificate and its key (opened, or a handle in the HSM)."""

    key: cx509.CaKey
    cert: Certificate

    @property
    def in_hsm(self) -> bool:
        """Whether the key is held in the HSM (a handle, never the key itself)."""
        return isinstance(self.key, pkcs11_ca.Pkcs11CaKey)

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
    hsm: Pkcs11Config | None = None,
) -> IssuingCa:
    """Generate a new root CA (``cardvault ca init``); with ``hsm`` the key is made inside
    the token and never exists outside it."""
    if hsm is None:
        key, cert = cx509.create_ca(
            common_name=common_name, organisation=organisation, now=utcnow()
        )
        return _store(data_dir, master, key, cert, force=force)
    _refuse_existing(data_dir, force=force)
    in_token = pkcs11_ca.generate(hsm)
    cert = cx509.self_signed_ca(
        in_token, common_name=common_name, organisation=organisation, now=utcnow()
    )
    _cert_path, key_path = _paths(data_dir)
    _replace_files(data_dir, cert)
    pkcs11_ca.describe(ca_dir(data_dir), hsm)
    if key_path.exists():
        shred(key_path)
    return IssuingCa(key=in_token, cert=cert)


def move_to_hsm(rt: Runtime, hsm: Pkcs11Config) -> IssuingCa:
    """Import the sealed CA key into the token (non-extractable), prove it signs there,
    then shred the sealed copy (``cardvault ca move-to-hsm``). The certificate stays."""
    current = load(rt)
    key = cx509.in_memory(current.key)
    if key is None:
        raise Conflict("The issuing CA's key is already in the HSM.")
    der = cx509.ca_key_to_der(key)
    try:
        in_token = pkcs11_ca.import_key(hsm, der, key.public_key())
    finally:
        wipe(der)
    pkcs11_ca.describe(ca_dir(rt.data_dir), hsm)
    shred(_paths(rt.data_dir)[1])
    return IssuingCa(key=in_token, cert=current.cert)


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
    _refuse_existing(data_dir, force=force)
    cert_path, key_path = _paths(data_dir)
    cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = cx509.ca_key_to_pem(key)
    try:
        sealed = master.seal(pem, aad=_AAD)
    finally:
        wipe(pem)
    _replace_files(data_dir, cert)
    write_private(key_path, sealed)
    (ca_dir(data_dir) / pkcs11_ca.DESCRIPTION).unlink(missing_ok=True)
    return IssuingCa(key=key, cert=cert)


def _refuse_existing(data_dir: Path, *, force: bool) -> None:
    if _paths(data_dir)[0].exists() and not force:
        raise Conflict(
            "An issuing CA already exists in this data directory.",
            remedy="Pass --force to replace it (cards issued so far keep theirs).",
        )


def _replace_files(data_dir: Path, cert: Certificate) -> None:
    """Write the new CA certificate, keeping the one it replaces under ``previous/``."""
    cert_path, _ = _paths(data_dir)
    cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if cert_path.exists():
        _keep_previous(data_dir, cert_path.read_bytes())
    write_private(cert_path, cx509.certificate_to_pem(cert))
    cert_path.chmod(0o644)


def load(rt: Runtime) -> IssuingCa:
    """The issuing CA, its key opened with the master key; raises CaMissing."""
    cert_path, key_path = _paths(rt.data_dir)
    described = ca_dir(rt.data_dir) / pkcs11_ca.DESCRIPTION
    if described.exists() and cert_path.exists():
        stamp = ("ca-hsm", described.stat().st_mtime_ns, cert_path.stat().st_mtime_ns)
        return rt.memo(stamp, lambda: _load_from_hsm(rt, cert_path))
    if not (cert_path.exists() and key_path.exists()):
        raise CaMissing(
            "This service has no issuing CA.",
            remedy="Run `cardvault ca init`, or issue with --external-ca.",
        )
    stamp = ("ca", key_path.stat().st_mtime_ns, cert_path.stat().st_mtime_ns)
    return rt.memo(stamp, lambda: _load(cert_path, key_path, rt.master_key))


def _load_from_hsm(rt: Runtime, cert_path: Path) -> IssuingCa:
    labels = pkcs11_ca.described_label(ca_dir(rt.data_dir))
    assert labels is not None
    config = hsm_config(rt.settings, token_label=labels[0], key_label=labels[1])
    cert = cx509.load_certificate_pem(cert_path.read_bytes())
    key = pkcs11_ca.Pkcs11CaKey(config, cx509.certificate_key(cert))
    pkcs11_ca.prove(key)
    return IssuingCa(key=key, cert=cert)


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


def _keep_previous(data_dir: Path, cert_pem: bytes, *, with_key: bool = False) -> None:
    cert = cx509.load_certificate_pem(cert_pem)
    folder = ca_dir(data_dir) / "previous"
    folder.mkdir(exist_ok=True, mode=0o700)
    name = cx509.certificate_summary(cert)["fingerprint_sha256"]
    if with_key:
        _, key_path = _paths(data_dir)
        described = ca_dir(data_dir) / pkcs11_ca.DESCRIPTION
        if key_path.exists():
            write_private(folder / f"{name}.key.sealed", key_path.read_bytes())
        elif described.exists():
            write_private(folder / f"{name}.pkcs11.json", described.read_bytes())
    write_private(folder / f"{name}.pem", cert_pem)
    (folder / f"{name}.pem").chmod(0o644)


def rotate(
    rt: Runtime, *, common_name: str, organisation: str | None, hsm: Pkcs11Config | None = None
) -> tuple[IssuingCa, IssuingCa]:
    """A new CA (key and certificate) becomes the issuing one; the old one keeps its key
    for its CRL and OCSP (see the module docstring). (old, new)."""
    old = load(rt)
    cert_path, _ = _paths(rt.data_dir)
    _keep_previous(rt.data_dir, cert_path.read_bytes(), with_key=True)
    cert_path.unlink()
    new = create(
        rt.data_dir, rt.master_key, common_name=common_name, organisation=organisation, hsm=hsm
    )
    return old, new


def signing_cas(rt: Runtime) -> tuple[IssuingCa, ...]:
    """Every CA this service can still sign for: the current one first, then rotated ones
    whose key is kept."""
    found = [load(rt)] if exists(rt.data_dir) else []
    folder = ca_dir(rt.data_dir) / "previous"
    for cert_file in sorted(folder.glob("*.pem")) if folder.is_dir() else ():
        previous = _previous(rt, cert_file)
        if previous is not None:
            found.append(previous)
    return tuple(found)


def _previous(rt: Runtime, cert_file: Path) -> IssuingCa | None:
    stem = cert_file.name.removesuffix(".pem")
    sealed, described = (
        cert_file.with_name(f"{stem}.key.sealed"),
        cert_file.with_name(f"{stem}.pkcs11.json"),
    )
    if sealed.exists():
        stamp = ("ca-previous", str(sealed), sealed.stat().st_mtime_ns)
        return rt.memo(stamp, lambda: _load(cert_file, sealed, rt.master_key))
    if described.exists():
        raw = json.loads(described.read_text())
        config = hsm_config(
            rt.settings, token_label=str(raw["token_label"]), key_label=str(raw["key_label"])
        )
        cert = cx509.load_certificate_pem(cert_file.read_bytes())
        return rt.memo(
            ("ca-previous-hsm", str(described)),
            lambda: IssuingCa(
                key=pkcs11_ca.Pkcs11CaKey(config, cx509.certificate_key(cert)), cert=cert
            ),
        )
    return None


def retire_previous(rt: Runtime, still_used: Callable[[str], bool]) -> list[str]:
    """Shred the keys of rotated CAs none of whose certificates is still valid
    (``still_used(key_id)`` says); their last CRL is still served. The key ids retired."""
    retired = []
    folder = ca_dir(rt.data_dir) / "previous"
    for cert_file in sorted(folder.glob("*.pem")) if folder.is_dir() else ():
        stem = cert_file.name.removesuffix(".pem")
        sealed = cert_file.with_name(f"{stem}.key.sealed")
        described = cert_file.with_name(f"{stem}.pkcs11.json")
        if not (sealed.exists() or described.exists()):
            continue
        kid = key_id(cx509.load_certificate_pem(cert_file.read_bytes()))
        if still_used(kid):
            continue
        if sealed.exists():
            shred(sealed)
        described.unlink(missing_ok=True)
        retired.append(kid)
    return retired


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
