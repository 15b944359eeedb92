"""Reader links: a card inserted in a connector's virtual reader for one card session.

A holder's connector opens a link inside the card session the agent opened with the strong
passcode and a second factor; nothing is relayed outside one. The link starts with nothing
proved (as after power-up) and dies with the session: logout, expiry, lock and revocation
delete the session row, and the link with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cardvault.card.piv import PivState, dump_state, load_state
from cardvault.card.piv.data import public_objects
from cardvault.card.piv.link_state import LinkState, dump_link_state
from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import WrongSecret, unwrap_session
from cardvault.domain import identifiers
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import AppletOrigin
from cardvault.errors import PermissionDenied
from cardvault.services.audit import trail as audit
from cardvault.services.piv import key_management, statements
from cardvault.services.piv.answers import PROBES, constant_answers
from cardvault.services.piv.errors import LinkClosed, NoPivApplet
from cardvault.services.piv.image import issued_certificates, with_certificates
from cardvault.services.piv.ports import Mode
from cardvault.services.pki import content_signer
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.errors import SessionInvalid
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, CardSession, PivCard, PivLink
from cardvault.store.types import new_id

__all__ = [
    "PROBES",
    "LinkStatus",
    "UseLink",
    "check_session_key",
    "close",
    "constant_answers",
    "open_use_link",
    "status",
]


@dataclass(frozen=True, kw_only=True)
class UseLink:
    """A reader link opened in a card session, with the answers the connector may cache."""

    link_id: str
    serial: str
    #: GET DATA answers for the public objects (None: the card has no such object)
    objects: dict[int, bytes | None]
    #: answers to the probes card drivers send, which depend on nothing
    constant: dict[bytes, bytes]
    expires_at: datetime
    idle_expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class LinkStatus:
    """Whether a reader link is alive, and until when."""

    alive: bool
    expires_at: datetime | None = None
    idle_expires_at: datetime | None = None


def open_use_link(
    rt: Runtime, actor: Actor, *, token: str, session_key: bytes, serial: str | None = None
) -> UseLink:
    """Insert the session's card into a new reader link; refuse any other card. A card whose
    organisation now wants a key-management key gets it first (key_management.py)."""
    key_management.add_when_wanted(rt, actor, token=token, session_key=session_key)
    with transaction(rt.db) as session:
        row, card = card_sessions.use(session, rt, token, client_address=actor.client_address)
        if row.purpose != "holder":
            raise PermissionDenied(
                "This is an RA session: sign in as a card holder to use your card in "
                "smartcard software."
            )
        if serial is not None and identifiers.card_serial(serial) != card.serial:
            raise PermissionDenied(
                f"You are signed in with card {card.serial}; card {serial.strip().upper()} "
                "cannot be used in this session."
            )
        check_session_key(row, session_key)
        piv = session.get(PivCard, card.id)
        if piv is None:
            raise NoPivApplet(
                f"Card {card.serial} has no card PIN yet.",
                remedy="Set one with `cardvault-agent pin set` (the connector asks for it "
                "when it starts at a terminal).",
            )
        state = _refresh_certificates(session, rt, card, piv)
        link = PivLink(
            id=new_id(),
            card_id=card.id,
            session_id=row.id,
            mode=Mode.USE.value,
            link_state=dump_link_state(LinkState()).decode(),
        )
        session.add(link)
        audit.record_for_card(
            session,
            rt,
            card_sessions.owner(actor, row),
            card,
            action=AuditAction.PIV_CARD_INSERTED,
            organisation_id=row.organisation_id,
            details={"channel": "pcsc", "session": row.id, "link": link.id},
        )
        return UseLink(
            link_id=link.id,
            serial=card.serial,
            objects=public_objects(state),
            constant=constant_answers(state),
            expires_at=row.expires_at,
            idle_expires_at=row.idle_expires_at,
        )


def _refresh_certificates(session: Session, rt: Runtime, card: Card, piv: PivCard) -> PivState:
    """A card the service built the applet for shows its current certificates: after a
    renewal the new ones (and the new keys' algorithms), as a reissued card would. Written
    by compare-and-swap like an APDU; if an APDU moved the row first, the next link opening
    refreshes it. Returns the state the link starts from."""
    state = load_state(piv.state.encode())
    if piv.origin != AppletOrigin.SERVICE:
        return state
    current = with_certificates(
        state,
        card_id=card.id,
        serial=card.serial,
        certificates=issued_certificates(session, card.id),
        sign=content_signer.when_needed(rt),
    )
    if current == state:
        return state
    values = {
        "where_card": piv.card_id,
        "seen": piv.version,
        "new_state": dump_state(current).decode(),
        "new_secrets": piv.secrets,
        "new_secrets_version": piv.secrets_version,
        "new_public_keys": piv.public_keys,
        "new_pin_blocked_at": piv.pin_blocked_at,
        "now": rt.clock(),
    }
    moved = int(getattr(session.execute(statements.SAVE_CARD, values), "rowcount", 0) or 0)
    return current if moved == 1 else state


def check_session_key(row: CardSession, session_key: bytes) -> None:
    """Raise SessionInvalid unless ``session_key`` opens this card session's wrap."""
    try:
        wipe(unwrap_session(row.session_wrap, session_key, session_id=row.id))
    except WrongSecret:
        raise SessionInvalid("The session key does not match this session.") from None


def close(rt: Runtime, actor: Actor, *, token: str, link_id: str) -> None:
    """Remove the card from the reader: the link (and an issuance key's wrap) is deleted."""
    with transaction(rt.db) as session:
        row = session.scalar(
            select(CardSession).where(CardSession.token_hash == card_sessions.token_hash(token))
        )
        link = session.get(PivLink, link_id)
        if row is None or link is None or link.session_id != row.id:
            raise LinkClosed("This card is no longer in the reader.")
        card = session.get(Card, link.card_id)
        assert card is not None
        session.execute(delete(PivLink).where(PivLink.id == link.id))
        audit.record_for_card(
            session,
            rt,
            card_sessions.owner(actor, row),
            card,
            action=AuditAction.PIV_CARD_REMOVED,
            details={"channel": "pcsc", "session": row.id, "link": link.id, "mode": link.mode},
        )


def status(rt: Runtime, *, token: str, link_id: str) -> LinkStatus:
    """Whether the link still works, without restarting the session's idle timer."""
    with rt.db() as session:
        row = session.scalar(
            select(CardSession).where(CardSession.token_hash == card_sessions.token_hash(token))
        )
        link = session.get(PivLink, link_id)
    now = rt.clock()
    if row is None or link is None or link.session_id != row.id:
        return LinkStatus(alive=False)
    if now >= row.expires_at or now >= row.idle_expires_at:
        return LinkStatus(alive=False)
    return LinkStatus(alive=True, expires_at=row.expires_at, idle_expires_at=row.idle_expires_at)
