"""Rotating the transport keys (DESIGN §3.5, issue 20): publish a new one, accept both,
retire the old.

Every key in ``<data>/keys/transport`` is in the JWKS and opens envelopes, so adding a key
changes nothing for clients in flight; cardvault's own clients are pointed at the newest
ECDH key (``preferred_kid``) and third-party clients pick the newest RSA key from the JWKS
when they next fetch it. Retiring removes one key: envelopes sealed to it are refused from
then on, so retire only after clients have had time to fetch the JWKS again (their cache
lifetime). The last key of a kind cannot be retired.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardvault.crypto.envelope import ECDH_KEY_MANAGEMENT
from cardvault.domain.audit_actions import AuditAction
from cardvault.errors import Conflict, NotFound
from cardvault.services.rotation import events
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.services.transport import keys as transport_keys


@dataclass(frozen=True, kw_only=True)
class TransportKeyView:
    """A published transport key: its kid, algorithm, and whether clients should prefer it."""

    kid: str
    alg: str
    preferred: bool


def listing(rt: Runtime) -> list[TransportKeyView]:
    """The published keys, oldest first."""
    preferred = transport_keys.preferred_kid(rt)
    return [
        TransportKeyView(kid=kid, alg=key.alg, preferred=kid == preferred)
        for kid, key in transport_keys.keys(rt).items()
    ]


def add(rt: Runtime, actor: Actor, *, ecdh: bool) -> TransportKeyView:
    """Publish a new key of the kind (P-256 ECDH-ES, or RSA-3072); audited."""
    key = transport_keys.create(rt.settings.keys_dir, rt.master_key, ecdh=ecdh, now=rt.clock())
    transport_keys.forget_scan(rt.settings.keys_dir)
    events.record_step(rt, actor, AuditAction.KEY_TRANSPORT_ADDED, {"kid": key.kid, "alg": key.alg})
    return TransportKeyView(kid=key.kid, alg=key.alg, preferred=ecdh)


def retire(rt: Runtime, actor: Actor, kid: str) -> None:
    """Stop publishing and accepting ``kid``; refused for the last key of its kind."""
    found = transport_keys.keys(rt)
    key = found.get(kid)
    if key is None:
        raise NotFound(f"There is no transport key {kid!r}.")
    kind = key.alg == ECDH_KEY_MANAGEMENT
    if not any(k != kid and (o.alg == ECDH_KEY_MANAGEMENT) == kind for k, o in found.items()):
        raise Conflict(
            f"{kid} is the only {key.alg} transport key: clients would have none to use.",
            remedy="Add a new key first (`cardvault keys transport-add`), then retire this one.",
        )
    transport_keys.retire(rt.settings.keys_dir, kid)
    events.record_step(rt, actor, AuditAction.KEY_TRANSPORT_RETIRED, {"kid": kid, "alg": key.alg})
