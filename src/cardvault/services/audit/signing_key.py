"""The service's Ed25519 audit key, sealed under the master key in the data directory.

After a rotation (``rotate``, issue 20) the keys it replaced keep only their public half,
under ``keys/audit-previous/``: heads, checkpoints and anchors they signed still verify,
and nothing new can be signed with them.
"""

from __future__ import annotations

from pathlib import Path

from cardvault.crypto import signing
from cardvault.crypto.aead import aad, wipe
from cardvault.keystore.files import write_private
from cardvault.keystore.provider import MasterKey
from cardvault.services.audit.errors import AuditKeyMissing
from cardvault.services.system.runtime import Runtime

_AAD = aad("audit-key", 1)


def _paths(keys_dir: Path) -> tuple[Path, Path]:
    return keys_dir / "audit-key.sealed", keys_dir / "audit-key.pub.pem"


def create_audit_key(keys_dir: Path, master: MasterKey) -> None:
    """Make the Ed25519 audit key, sealed under the master key, unless there is one already."""
    if not _paths(keys_dir)[0].exists():
        _new_key(keys_dir, master)


def _new_key(keys_dir: Path, master: MasterKey) -> bytes:
    """A new key, sealed, in place of any there was, and its public half beside it."""
    sealed, public = _paths(keys_dir)
    key = signing.generate_audit_key()
    pem = signing.audit_key_to_pem(key)
    try:
        write_private(sealed, master.seal(pem, aad=_AAD))
    finally:
        wipe(pem)
    new_public = signing.public_key_bytes(key)
    write_private(public, signing.public_key_to_pem(new_public))
    return new_public


def audit_private_key(rt: Runtime) -> signing.AuditKey:
    """The audit signing key, opened with the master key; raises AuditKeyMissing."""
    sealed, _ = _paths(rt.settings.keys_dir)
    if not sealed.exists():
        raise AuditKeyMissing(
            f"The audit key is missing from {rt.settings.keys_dir}.",
            remedy="Restore the data directory; audit cannot run without it.",
        )
    stamp = ("audit-key", sealed.stat().st_mtime_ns)
    return rt.memo(stamp, lambda: _load(sealed, rt.master_key))


def _load(path: Path, master: MasterKey) -> signing.AuditKey:
    pem = master.open(path.read_bytes(), aad=_AAD)
    try:
        return signing.load_audit_key_pem(pem)
    finally:
        wipe(pem)


def audit_public_key(rt: Runtime) -> bytes:
    """The audit key's public half, to verify heads and anchors; raises OSError if absent."""
    _, public = _paths(rt.settings.keys_dir)
    return signing.load_public_key_pem(public.read_bytes())


def audit_public_keys(rt: Runtime) -> tuple[bytes, ...]:
    """The current public key first, then those it replaced (what a signature may be by)."""
    folder = rt.settings.keys_dir / "audit-previous"
    older = sorted(folder.glob("*.pub.pem")) if folder.is_dir() else []
    return (audit_public_key(rt), *(signing.load_public_key_pem(p.read_bytes()) for p in older))


def rotate(keys_dir: Path, master: MasterKey) -> tuple[bytes, bytes]:
    """A new audit key replaces the current one, whose public half is kept (first, so a
    crash leaves the old signatures verifiable); (old public, new public)."""
    _, public = _paths(keys_dir)
    old_public = signing.load_public_key_pem(public.read_bytes())
    folder = keys_dir / "audit-previous"
    folder.mkdir(exist_ok=True, mode=0o700)
    write_private(folder / f"{old_public.hex()[:16]}.pub.pem", public.read_bytes())
    return old_public, _new_key(keys_dir, master)
