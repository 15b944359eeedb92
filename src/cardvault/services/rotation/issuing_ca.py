"""Rotating the issuing CA (issue 20): a new CA certificate and key; issuance and renewals
use it at once, while the old CA keeps its key to re-sign its CRL and certify its OCSP
responder until the last certificate it issued has expired (``services/pki/ca``). Then
``retire`` shreds the old key; its last CRL is still served."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from cardvault.crypto import x509 as cx509
from cardvault.domain.audit_actions import AuditAction
from cardvault.keystore.pkcs11 import Pkcs11Config
from cardvault.services.pki import ca
from cardvault.services.pki import crl as crls
from cardvault.services.rotation import events
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Certificate


@dataclass(frozen=True, kw_only=True)
class CaRotation:
    """A CA rotation done: the old and the new CA's subject and key id."""

    old_subject: str
    old_key_id: str
    new_subject: str
    new_key_id: str


def rotate(
    rt: Runtime,
    actor: Actor,
    *,
    common_name: str,
    organisation: str | None = None,
    hsm: Pkcs11Config | None = None,
) -> CaRotation:
    """Make a new issuing CA, keep the old one signing its CRL; both CRLs re-signed."""
    old, new = ca.rotate(rt, common_name=common_name, organisation=organisation, hsm=hsm)
    done = CaRotation(
        old_subject=cx509.name_text(old.cert.subject),
        old_key_id=ca.key_id(old.cert),
        new_subject=cx509.name_text(new.cert.subject),
        new_key_id=ca.key_id(new.cert),
    )
    events.record_step(
        rt,
        actor,
        AuditAction.KEY_CA_ROTATED,
        {"old_key_id": done.old_key_id, "new_key_id": done.new_key_id},
    )
    crls.publish_after_change(rt)
    return done


def retire(rt: Runtime, actor: Actor) -> list[str]:
    """Shred the keys of rotated CAs whose certificates have all expired; audited."""
    now = rt.clock()

    def still_used(key_id: str) -> bool:
        with rt.db() as session:
            return (
                session.scalar(
                    select(Certificate.id)
                    .where(Certificate.ca_key_id == key_id, Certificate.not_after > now)
                    .limit(1)
                )
                is not None
            )

    retired = ca.retire_previous(rt, still_used)
    if retired:
        events.record_step(rt, actor, AuditAction.KEY_CA_RETIRED, {"key_ids": retired})
    return retired
