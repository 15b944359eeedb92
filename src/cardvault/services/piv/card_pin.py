"""The holder's card PIN, set and changed inside a card session (DESIGN §3.8 revised).

The card PIN is what PIV software asks for (6-8 digits); it opens no key slot and the service
accepts it only inside a card session that the strong passcode and a second factor opened.
So it is managed in such a session too, never by an RA and never with a PUK:

* **set** -- a card the service issued has no applet until its holder sets a PIN: the first
  ``set_pin`` builds the applet image from the card's keys and certificates (image.py).
* **change** -- with the current PIN, which counts down the same retry counter as VERIFY.
* **unblock** -- three wrong PINs block it (``pin_blocked_at`` says when); a card session
  opened *after* that moment proves the passcode and a second factor afresh, and may set a
  new PIN without the old one. The session that was open while the PIN was guessed may not.

The agent reaches this with its card session's token and SK; the portal's "My card" with
the id of the holder's card session (``*_by_id``: the portal never holds SK, and needs none
here -- the applet is sealed under the master key). Both open a ``holder`` card session.

Every change is a compare-and-swap on the card's PIV row (the relay's ``SAVE_CARD``), so a
PIN change and APDUs from a reader never overwrite each other; the PIN is stored only as an
Argon2id verifier sealed under the master key (secrets.py), and the links' PIN re-check
values are forgotten, so the old PIN opens no reader any more.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from cardvault.card.piv import PinRef, PivState, dump_state, load_state
from cardvault.crypto.pin_verifier import ReferenceMismatch, check_verifier, make_verifier
from cardvault.crypto.profile import CertUsage
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.card_pin import check_card_pin
from cardvault.domain.card_pin import rule as pin_rule
from cardvault.domain.vocabulary import AppletOrigin
from cardvault.errors import PermissionDenied
from cardvault.json_types import JsonInput
from cardvault.services.audit import trail as audit
from cardvault.services.piv import statements
from cardvault.services.piv.errors import (
    CardPinBlocked,
    CardPinRaced,
    NotReadyForReaders,
    WrongCardPin,
)
from cardvault.services.piv.image import IssuedCertificate, build_image, issued_certificates
from cardvault.services.piv.reader_links import check_session_key
from cardvault.services.piv.secrets import PivSecrets, open_secrets, seal_secrets
from cardvault.services.pki import content_signer
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.errors import SessionInvalid
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, CardSession, Organisation, PivCard, PivLink
from cardvault.store.queries.organisations import policy_of

__all__ = [
    "CardPinStatus",
    "PinChanged",
    "blocked_since",
    "minimum_for",
    "provision",
    "set_pin",
    "set_pin_by_id",
    "status",
    "status_by_id",
]

#: opens the holder's card session in the caller's transaction (or raises SessionInvalid)
Opener = Callable[[Session], tuple[CardSession, Card]]
#: runs in the change's own transaction, with the outcome (the portal's confirmation email)
Also = Callable[[Session, Card, str], None]


@dataclass(frozen=True, kw_only=True)
class CardPinStatus:
    """The card PIN as the holder's session sees it: set, blocked, tries left."""

    serial: str
    pin_set: bool
    blocked: bool
    attempts_left: int
    #: blocked, and this session was opened after the block: it may set a new PIN
    may_unblock: bool
    #: the organisation's shortest card PIN
    minimum: int = 6


@dataclass(frozen=True, kw_only=True)
class PinChanged:
    """A card PIN that was set, changed or unblocked."""

    serial: str
    #: ``set`` (the card's first PIN), ``changed`` or ``unblocked``
    outcome: str


@dataclass(frozen=True, kw_only=True)
class _Seen:
    """The card as the request found it."""

    session_id: str
    session_created_at: datetime
    card_id: str
    serial: str
    piv: PivCard | None
    certificates: dict[CertUsage, IssuedCertificate]
    #: the organisation's shortest card PIN
    pin_minimum: int


def minimum_for(session: Session, organisation_id: str | None) -> int:
    """The shortest card PIN the organisation allows (its policy; 6 when it has none)."""
    org = session.get(Organisation, organisation_id) if organisation_id else None
    return policy_of(org).card_pin_min_length


def rule_for(rt: Runtime, organisation_id: str) -> str:
    """The organisation's card PIN rule in words ("6 to 8 digits", "8 digits"), for the
    pages that ask for a card PIN outside a card session (the RA's enrolment)."""
    with rt.db() as session:
        return pin_rule(minimum_for(session, organisation_id))


def blocked_since(seen: datetime | None, state: PivState, now: datetime) -> datetime | None:
    """When the card PIN got blocked (``seen`` if it already was); None if it is not."""
    if not state.pin_tries.blocked:
        return None
    return seen or now


def status(rt: Runtime, actor: Actor, *, token: str, session_key: bytes) -> CardPinStatus:
    """Whether the session's card has a PIN, and whether this session may unblock it."""
    return _status(rt, _by_token(rt, actor, token, session_key))


def status_by_id(rt: Runtime, actor: Actor, session_id: str) -> CardPinStatus:
    """:func:`status` for the portal, which knows the holder's card session by its id."""
    return _status(rt, _by_id(rt, actor, session_id))


def _status(rt: Runtime, opener: Opener) -> CardPinStatus:
    seen = _look(rt, opener)
    if seen.piv is None:
        return CardPinStatus(
            serial=seen.serial,
            pin_set=False,
            blocked=False,
            attempts_left=0,
            may_unblock=False,
            minimum=seen.pin_minimum,
        )
    tries = load_state(seen.piv.state.encode()).pin_tries
    return CardPinStatus(
        serial=seen.serial,
        pin_set=True,
        blocked=tries.blocked,
        attempts_left=tries.left,
        may_unblock=tries.blocked and _signed_in_since_block(seen),
        minimum=seen.pin_minimum,
    )


def set_pin(
    rt: Runtime,
    actor: Actor,
    *,
    token: str,
    session_key: bytes,
    new_pin: str,
    current_pin: str | None = None,
) -> PinChanged:
    """Set, change or unblock the card PIN of the session's card (see the module docstring)."""
    opener = _by_token(rt, actor, token, session_key)
    return _set(rt, actor, opener, new_pin, current_pin, _Via(name="agent"))


def set_pin_by_id(
    rt: Runtime,
    actor: Actor,
    session_id: str,
    *,
    new_pin: str,
    current_pin: str | None = None,
    also: Also | None = None,
) -> PinChanged:
    """:func:`set_pin` from the portal's "My card"; ``also`` runs in the change's transaction."""
    opener = _by_id(rt, actor, session_id)
    return _set(rt, actor, opener, new_pin, current_pin, _Via(name="portal", also=also))


@dataclass(frozen=True, kw_only=True)
class _Via:
    """Where the change came from (audited), and what else its transaction does."""

    name: str
    also: Also | None = None

    def run(self, session: Session, card: Card, outcome: str) -> None:
        if self.also is not None:
            self.also(session, card, outcome)


def _set(
    rt: Runtime,
    actor: Actor,
    opener: Opener,
    new_pin: str,
    current_pin: str | None,
    via: _Via,
) -> PinChanged:
    check_card_pin(new_pin)
    seen = _look(rt, opener)
    check_card_pin(new_pin, minimum=seen.pin_minimum)
    if seen.piv is None:
        return _first_pin(rt, actor, opener, seen, new_pin, via)
    state = load_state(seen.piv.state.encode())
    if state.pin_tries.blocked:
        if not _signed_in_since_block(seen):
            raise CardPinBlocked(
                "Your card PIN is blocked after three wrong tries.",
                remedy="Sign in again with your passcode and second factor (on My card, or "
                "cardvault-agent logout, then login), then set a new card PIN.",
            )
        return _replace_pin(
            rt, actor, opener, seen, state, new_pin, AuditAction.PIV_PIN_UNBLOCKED, via
        )
    _check_current(rt, actor, opener, seen, state, current_pin)
    return _replace_pin(
        rt, actor, opener, seen, state, new_pin, AuditAction.PIV_PIV_PIN_CHANGED, via
    )


# -- reading -------------------------------------------------------------------------------------


def _by_token(rt: Runtime, actor: Actor, token: str, session_key: bytes) -> Opener:
    return lambda session: _holder_session(session, rt, actor, token, session_key)


def _by_id(rt: Runtime, actor: Actor, session_id: str) -> Opener:
    return lambda session: card_sessions.use_id(
        session, rt, session_id, client_address=actor.client_address, purpose="holder"
    )


def _look(rt: Runtime, opener: Opener) -> _Seen:
    with transaction(rt.db) as session:
        row, card = opener(session)
        piv = session.get(PivCard, card.id)
        if piv is not None:
            session.expunge(piv)
        return _Seen(
            session_id=row.id,
            session_created_at=row.created_at,
            card_id=card.id,
            serial=card.serial,
            piv=piv,
            certificates=issued_certificates(session, card.id),
            pin_minimum=minimum_for(session, card.organisation_id),
        )


def _holder_session(
    session: Session, rt: Runtime, actor: Actor, token: str, session_key: bytes
) -> tuple[CardSession, Card]:
    row, card = card_sessions.use(session, rt, token, client_address=actor.client_address)
    if row.purpose != "holder":
        raise PermissionDenied("Sign in as the card's holder to manage its card PIN.")
    check_session_key(row, session_key)
    return row, card


def _signed_in_since_block(seen: _Seen) -> bool:
    """A card session opened after the PIN was blocked (an older row: the last change)."""
    assert seen.piv is not None
    blocked_at = seen.piv.pin_blocked_at or seen.piv.updated_at
    return seen.session_created_at > blocked_at


# -- the first PIN: the applet is built ----------------------------------------------------------


def _first_pin(
    rt: Runtime, actor: Actor, opener: Opener, seen: _Seen, new_pin: str, via: _Via
) -> PinChanged:
    image, sealed = _new_applet(rt, seen.card_id, seen.serial, seen.certificates, new_pin)
    try:
        with transaction(rt.db) as session:
            row, card = _holder_session_again(session, opener, seen)
            _insert_applet(session, rt, card_sessions.owner(actor, row), card, image, sealed,
                           details={"session": row.id, "via": via.name})  # fmt: skip
            via.run(session, card, "set")
    except DbIntegrityError:
        raise CardPinRaced(
            "The card PIN was set from elsewhere at the same moment.",
            remedy="Change it on My card or with cardvault-agent pin change.",
        ) from None
    return PinChanged(serial=seen.serial, outcome="set")


def provision(rt: Runtime, actor: Actor, *, card_id: str, pin: str, via: str) -> bool:
    """At enrolment (the invitation's last step, the holder having proved the email link, the
    text message and a new passcode): build the applet with the holder's first card PIN.
    False when the card already has one or lacks its certificates (the connector asks later)."""
    with rt.db() as session:
        card = session.get(Card, card_id)
        assert card is not None
        check_card_pin(pin, minimum=minimum_for(session, card.organisation_id))
        if session.get(PivCard, card_id) is not None:
            return False
        serial, certificates = card.serial, issued_certificates(session, card_id)
    try:
        image, sealed = _new_applet(rt, card_id, serial, certificates, pin)
    except NotReadyForReaders:
        return False
    try:
        with transaction(rt.db) as session:
            card = session.get(Card, card_id)
            assert card is not None
            _insert_applet(session, rt, actor, card, image, sealed, details={"via": via})
    except DbIntegrityError:
        return False
    return True


def _new_applet(
    rt: Runtime,
    card_id: str,
    serial: str,
    certificates: Mapping[CertUsage, IssuedCertificate],
    pin: str,
) -> tuple[PivState, bytes]:
    """The applet image and its sealed secrets, made before the transaction (KDF, signing)."""
    image = build_image(
        card_id=card_id,
        serial=serial,
        certificates=certificates,
        sign=content_signer.chuid_signer(rt),
    )
    with rt.kdf_gate.slot():
        pin_verifier = make_verifier(pin.encode(), rt.settings.argon2)
    with rt.kdf_gate.slot():  # a PUK nobody knows: RESET RETRY COUNTER is blocked anyway
        puk = make_verifier(secrets.token_bytes(16), rt.settings.argon2)
    piv_secrets = PivSecrets(pin=pin_verifier, puk=puk, pin_set=True, puk_set=False)
    return image, seal_secrets(rt.master_key, card_id, 1, piv_secrets)


def _insert_applet(
    session: Session,
    rt: Runtime,
    actor: Actor,
    card: Card,
    image: PivState,
    sealed: bytes,
    *,
    details: Mapping[str, JsonInput],
) -> None:
    session.add(
        PivCard(
            card_id=card.id,
            state=dump_state(image).decode(),
            secrets=sealed,
            secrets_version=1,
            public_keys={},
            origin=AppletOrigin.SERVICE,
        )
    )
    session.flush()
    built = {"channel": "pcsc", "serial": card.serial, "origin": AppletOrigin.SERVICE.value}
    for action, more in ((AuditAction.PIV_APPLET_BUILT, built), (AuditAction.PIV_PIN_SET, {})):
        audit.record_for_card(
            session, rt, actor, card, action=action, details={**more, **details, "channel": "pcsc"}
        )


def _holder_session_again(
    session: Session, opener: Opener, seen: _Seen
) -> tuple[CardSession, Card]:
    """The session is still live and still the one read before the Argon2id run."""
    row, card = opener(session)
    if row.id != seen.session_id or card.id != seen.card_id:
        raise SessionInvalid("The session changed; sign in again.")
    return row, card


# -- changing and unblocking ---------------------------------------------------------------------


def _check_current(
    rt: Runtime, actor: Actor, opener: Opener, seen: _Seen, state: PivState, current: str | None
) -> None:
    """The current PIN, checked like a VERIFY: a wrong one counts down the card's counter."""
    assert seen.piv is not None
    piv = seen.piv
    piv_secrets = open_secrets(rt.master_key, seen.card_id, piv.secrets_version, piv.secrets)
    try:
        with rt.kdf_gate.slot():
            check_verifier(piv_secrets.pin, (current or "").encode())
        return
    except ReferenceMismatch:
        pass
    after = replace(state, pin_tries=state.pin_tries.failed())
    with transaction(rt.db) as session:
        row, card = _holder_session_again(session, opener, seen)
        _save(session, rt, piv, after, piv.secrets, piv.secrets_version)
        owner = card_sessions.owner(actor, row)
        left = after.pin_tries.left
        failure: dict[str, JsonInput] = {
            "channel": "pcsc",
            "reference": "card PIN",
            "attempts_left": left,
        }
        _audit(session, rt, owner, card, row, AuditAction.PIV_VERIFY, failure, "incorrect card PIN")
        if after.pin_tries.blocked:
            blocked = {"channel": "pcsc", "reference": "card PIN"}
            _audit(session, rt, owner, card, row, AuditAction.PIV_BLOCKED, blocked)
    raise WrongCardPin(
        "That is not your current card PIN." if current else "Give your current card PIN.",
        attempts_left=after.pin_tries.left,
    )


def _replace_pin(
    rt: Runtime,
    actor: Actor,
    opener: Opener,
    seen: _Seen,
    state: PivState,
    new_pin: str,
    action: AuditAction,
    via: _Via,
) -> PinChanged:
    assert seen.piv is not None
    piv = seen.piv
    outcome = "unblocked" if action is AuditAction.PIV_PIN_UNBLOCKED else "changed"
    with rt.kdf_gate.slot():
        verifier = make_verifier(new_pin.encode(), rt.settings.argon2)
    old = open_secrets(rt.master_key, seen.card_id, piv.secrets_version, piv.secrets)
    new_secrets = old.with_reference(PinRef.PIV_PIN, verifier)
    version = piv.secrets_version + 1
    sealed = seal_secrets(rt.master_key, seen.card_id, version, new_secrets)
    after = replace(state, pin_tries=state.pin_tries.reset())
    with transaction(rt.db) as session:
        row, card = _holder_session_again(session, opener, seen)
        _save(session, rt, piv, after, sealed, version)
        session.execute(update(PivLink).where(PivLink.card_id == card.id).values(pin_recheck=None))
        owner = card_sessions.owner(actor, row)
        _audit(session, rt, owner, card, row, action, {"channel": "pcsc", "via": via.name})
        via.run(session, card, outcome)
    return PinChanged(serial=seen.serial, outcome=outcome)


def _save(
    session: Session, rt: Runtime, piv: PivCard, after: PivState, sealed: bytes, version: int
) -> None:
    """Compare-and-swap on the card's PIV row, as the relay writes it."""
    now = rt.clock()
    values: dict[str, object] = {
        "where_card": piv.card_id,
        "seen": piv.version,
        "new_state": dump_state(after).decode(),
        "new_secrets": sealed,
        "new_secrets_version": version,
        "new_public_keys": piv.public_keys,
        "new_pin_blocked_at": blocked_since(piv.pin_blocked_at, after, now),
        "now": now,
    }
    result = session.execute(statements.SAVE_CARD, values)
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise CardPinRaced("The card was used in a reader at the same moment.", remedy="Try again.")


def _audit(
    session: Session,
    rt: Runtime,
    owner: Actor,
    card: Card,
    row: CardSession,
    action: AuditAction,
    details: Mapping[str, JsonInput],
    reason: str | None = None,
) -> None:
    audit.record_for_card(
        session,
        rt,
        owner,
        card,
        action=action,
        outcome="failure" if reason else "success",
        reason=reason,
        organisation_id=row.organisation_id,
        details={**details, "session": row.id},
    )
