"""Rotating the audit signing key (issue 20): new heads and anchors are signed by the new
key, while chains and anchors the old key signed still verify with `cardvault audit verify`;
a head signed by a key that was never the service's still fails."""

from __future__ import annotations

from sqlalchemy import select, update
from tests.support import factories as f
from tests.support.cli import Cli

from cardvault.crypto import signing
from cardvault.services.audit import signing_key
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, AuditHead


def test_after_an_audit_key_rotation_old_and_new_signatures_verify(
    rt: Runtime, operator: Actor, cli: Cli
) -> None:
    f.org(rt, operator, "QUIET")  # its chain's head keeps the old key's signature
    f.org(rt, operator, "BUSY")
    old_public = signing_key.audit_public_key(rt)
    assert cli.run("audit", "verify").ok().json["ok"] is True

    rotated = cli.run("--json", "keys", "rotate-audit").ok().json
    assert rotated["old_public_key"] == old_public.hex()
    rt._memo.clear()
    assert signing_key.audit_public_key(rt).hex() == rotated["new_public_key"]
    f.person(rt, operator, "BUSY")  # a new event on one chain, signed by the new key
    with rt.db() as session:
        assert "rotation.audit_key_rotated" in set(session.scalars(select(AuditEvent.action)))
    report = cli.run("audit", "verify").ok().json
    assert report["ok"] is True, report

    with rt.db.begin() as session:  # a head re-signed by a stranger's key
        chain = session.scalars(select(AuditHead.chain)).first()
        assert chain is not None
        forged = signing.generate_audit_key().sign(b"not the head")
        session.execute(update(AuditHead).where(AuditHead.chain == chain).values(signature=forged))
    assert cli.run("audit", "verify").returncode != 0
