"""The mobile identity agent: a card session on the phone itself (DESIGN §3.2, method "mia").

Two ways to open the card, both inside a signed device request (possession of the paired
device):

* the passcode typed in the app (counts towards the lockout like anywhere else);
* biometric unlock: the app releases its 32-byte device secret from behind the phone's
  biometric and sends it in the JWE envelope; the device slot (DESIGN §3.1) opens with
  HKDF-SHA256 of it. The service never stores that secret.

Only a device paired as ``mia`` may do this, and only where the organisation allows "mia".
"""

from __future__ import annotations

from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import SlotNotFound, WrongSecret, open_device_slot
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus, SignInRoute
from cardvault.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from cardvault.services.audit import trail as audit
from cardvault.services.cards.sealing import open_record
from cardvault.services.devices.errors import BiometricUnlockFailed
from cardvault.services.devices.requests import DeviceCaller, as_actor
from cardvault.services.devices.unlock import (
    OpenedSession,
    check_passcode_text,
    open_session,
    open_with_passcode,
    require_route,
)
from cardvault.services.signin import factor_lockout
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Organisation
from cardvault.store.queries import cards as card_queries


def login(
    rt: Runtime,
    caller: DeviceCaller,
    *,
    passcode: str | None = None,
    device_secret: bytes | None = None,
) -> OpenedSession:
    """Sign in on the phone itself (the mobile identity agent). Raises InvalidInput for a
    malformed request, PermissionDenied when the policy does not allow it, and the
    look-alike SignInFailed for every refusal before the passcode."""
    if (passcode is None) == (device_secret is None):
        raise InvalidInput("Send either the passcode or the device secret.")
    actor = as_actor(caller)
    if caller.application != "mia":
        raise PermissionDenied(
            "This device was paired as an authenticator, not as a mobile identity agent.",
            remedy="Ask your RA for a pairing code and pair the app as a mobile agent.",
        )
    with rt.db() as session:
        card = session.get(Card, caller.card_id)
        org = session.get(Organisation, caller.organisation_id)
        assert card is not None and org is not None
    require_route(org, SignInRoute.MIA, "the mobile identity agent")
    if passcode is not None:
        dek = open_with_passcode(
            rt, actor, card, check_passcode_text(passcode), action=AuditAction.MIA_PASSCODE
        )
        how = "passcode"
    else:
        assert device_secret is not None
        dek = _open_biometric(rt, actor, caller, card, device_secret)
        how = "biometric"
    try:
        return _session(rt, actor, caller, card, org, dek, how)
    finally:
        wipe(dek)


def _open_biometric(
    rt: Runtime, actor: Actor, caller: DeviceCaller, card: Card, secret: bytes
) -> bytearray:
    """The device slot, opened by the secret the phone released behind its biometric. The
    secret is checked like a second factor: reserved first, and a wrong one counts."""
    if len(secret) != 32:
        raise InvalidInput("A device secret is 32 bytes.", field="device_secret")
    record = open_record(rt.master_key, card)
    with factor_lockout.reserved(
        rt, actor, card.id, organisation_id=caller.organisation_id
    ) as held:
        try:
            return open_device_slot(record, caller.device_id, secret)
        except (WrongSecret, SlotNotFound) as exc:
            wrong = isinstance(exc, WrongSecret)
            _refused(rt, actor, caller, card, held if wrong else None)
            held.committed = True
    raise BiometricUnlockFailed(
        "Biometric unlock is not set up for this device, or its secret does not match.",
        remedy="Sign in with your passcode; ask your RA to pair the app again to re-enable "
        "biometric unlock.",
    )


def _refused(
    rt: Runtime,
    actor: Actor,
    caller: DeviceCaller,
    card: Card,
    held: factor_lockout.Reservation | None,
) -> None:
    """Audit a failed biometric unlock; ``held``: a wrong secret, which counts."""
    with transaction(rt.db) as session:
        factor_lockout.audit_failure(
            session,
            rt,
            actor,
            card,
            held,
            action=AuditAction.AUTH_MIA,
            reason="wrong device secret" if held is not None else "device slot missing",
            organisation_id=caller.organisation_id,
            door=factor_lockout.SIGN_IN,
            details={"device": caller.device_id, "unlock": "biometric"},
        )


def _session(
    rt: Runtime,
    actor: Actor,
    caller: DeviceCaller,
    card: Card,
    org: Organisation,
    dek: bytearray,
    how: str,
) -> OpenedSession:
    with transaction(rt.db) as session:
        # the row locked either way; a passcode that opened the slot resets the count
        lock = card_queries.passcode_right if how == "passcode" else card_queries.for_update
        fresh = lock(session, card.id)
        if fresh.status != CardStatus.ACTIVE:
            raise AuthenticationFailed("This card can no longer be used.")
        factor_lockout.right(session, fresh.id)  # the device (and its secret) checked out
        opened = open_session(
            session,
            rt,
            actor,
            card=fresh,
            org=org,
            dek=dek,
            method=f"mia+{how}",
            client_address=caller.client_address,
        )
        for action, details in (
            (AuditAction.AUTH_MIA, {"device": caller.device_id, "unlock": how}),
            (AuditAction.SESSION_OPENED, {"session": opened.session_id, "method": f"mia+{how}"}),
        ):
            audit.record_for_card(
                session, rt, actor, card, action=action, organisation_id=org.id, details=details
            )
    return opened
