"""Starting a second factor during a passcode reset: a push to the paired phone, or a
security key's request (DESIGN §3.3).

Each call first checks the reset in this browser (live link, usable card, the browser's K),
so that only the browser that answered the questions can make the holder's phone ring or
learn its number. The answer is then checked by :func:`cardvault.services.recovery.reset.
second_factor`, with the plug-ins the sign-in uses.
"""

from __future__ import annotations

from cardvault.domain.push_policy import PushStatus
from cardvault.domain.vocabulary import MethodKind
from cardvault.errors import InvalidInput
from cardvault.json_types import JsonObject
from cardvault.services.devices import push
from cardvault.services.recovery import factors as recovery_factors
from cardvault.services.recovery import reset as recovery
from cardvault.services.recovery import reset_keys
from cardvault.services.recovery.errors import RecoveryStepInvalid
from cardvault.services.signin.factors import SecurityKeyOffer
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuthTransaction, Card, Organisation

PHONE = "authenticator"
SECURITY_KEY = MethodKind.SECURITY_KEY


def _bound(step: recovery.Step, method: str, what: str) -> list[str]:
    org_ids = recovery_factors.bound_in(step.txn, method)
    if not org_ids:
        raise InvalidInput(f"This card has no {what}.", field="method")
    return org_ids


def start_push(
    rt: Runtime, actor: Actor, token: str, transaction_id: str, key: bytes
) -> push.PushStarted:
    """Send a request to the phones of the organisations the reset's policy points at
    (``recovery_factors.push_organisations``); the page shows the number the holder types
    there. The push rate limit applies."""
    step = recovery.factor_step(rt, token, transaction_id, key)
    _bound(step, PHONE, "paired phone")
    with rt.db() as session:
        org_ids = recovery_factors.push_organisations(session, step.card, step.txn)
    return push.start_for_reset(rt, actor, step.txn.id, org_ids)


def push_prompt(
    rt: Runtime, token: str, transaction_id: str, key: bytes, challenge_id: str
) -> push.PushPrompt:
    """This reset's push once more: its number and until when it waits."""
    step = recovery.factor_step(rt, token, transaction_id, key)
    return push.prompt(rt, challenge_id[:36], step.txn.id)


def push_status(
    rt: Runtime, token: str, transaction_id: str, key: bytes, challenge_id: str
) -> PushStatus:
    """Whether the phone has answered this reset's push (for the page's script)."""
    step = recovery.factor_step(rt, token, transaction_id, key)
    return push.status(rt, challenge_id[:36], step.txn.id)


def security_key_options(
    rt: Runtime, actor: Actor, token: str, transaction_id: str, key: bytes
) -> JsonObject:
    """The ``navigator.credentials.get`` options for the card's keys in every organisation
    that offered them (``reset_keys``): a challenge bound to this reset's transaction, the
    same until it is answered, a new one after."""
    step = recovery.factor_step(rt, token, transaction_id, key)
    org_id = _bound(step, SECURITY_KEY, "security key")[0]
    with transaction(rt.db) as session:
        txn = session.get(AuthTransaction, step.txn.id, with_for_update=True)
        card = session.get(Card, step.card.id)
        org = session.get(Organisation, org_id)
        if txn is None or card is None or org is None or txn.state != recovery.STEP_FACTOR:
            raise RecoveryStepInvalid()
        ctx = recovery_factors.context(session, rt, actor, card, org, txn)
        offer = reset_keys.ResetSecurityKeys().offer(ctx)
    if not isinstance(offer, SecurityKeyOffer):  # the key was removed, or the policy changed
        raise InvalidInput("This card has no security key that can be used now.", field="method")
    return {"publicKey": offer.options["publicKey"]}
