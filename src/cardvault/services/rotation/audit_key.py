"""Rotating the audit signing key (issue 20): a new Ed25519 key signs every head, checkpoint
and anchor from now on; the old key's public half stays, so what it signed still verifies.
The rotation itself is the first event the new key signs."""

from __future__ import annotations

from cardvault.domain.audit_actions import AuditAction
from cardvault.services.audit import signing_key
from cardvault.services.rotation import events
from cardvault.services.system.runtime import Actor, Runtime


def rotate(rt: Runtime, actor: Actor) -> tuple[str, str]:
    """(old, new) public keys in hex; audited under the new key."""
    old, new = signing_key.rotate(rt.settings.keys_dir, rt.master_key)
    events.record_step(
        rt,
        actor,
        AuditAction.KEY_AUDIT_ROTATED,
        {"old_public_key": old.hex(), "new_public_key": new.hex()},
    )
    return old.hex(), new.hex()
