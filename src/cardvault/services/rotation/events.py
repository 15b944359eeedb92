"""A rotation step is audited after it is done, in a transaction of its own.

The state of a key rotation is in the key files and the key store, not in the database:
each step (a master key version begun or finished, a transport key added or retired, an
issuing CA or the audit signing key replaced) changes them first and then records the
event on the operator's chain. If the record fails, the step stands and the error
reaches the operator.
"""

from __future__ import annotations

from collections.abc import Mapping

from cardvault.domain.audit_actions import AuditAction
from cardvault.json_types import JsonInput
from cardvault.services.audit import trail as audit
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction


def record_step(
    rt: Runtime, actor: Actor, action: AuditAction, details: Mapping[str, JsonInput]
) -> None:
    """Audit one rotation step that is already done (raises AuditUnavailable)."""
    with transaction(rt.db) as session:
        audit.record(session, rt, actor, action=action, details=details)
