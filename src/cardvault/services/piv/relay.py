"""One APDU through the service (DESIGN §3.8): the applet answers against the stored state.

Each card's APDUs are serialised by compare-and-swap, not by holding a lock while keys are
generated or PINs are stretched: the APDU is computed from a snapshot (card state, link state,
sealed secrets), and committed -- new states, effects, audit events, in one transaction --
only if neither the card's nor the link's version moved meanwhile; otherwise it is computed
again from the fresh state. So two wrong PINs sent at once through two readers are counted
twice, never once, and a 9C signature armed by one VERIFY happens once.

A request carries the link's sequence number: the answer to the last one is kept (sealed under
a key derived from the caller's SK or IK), so a request repeated after a lost response gets
the same answer instead of running twice.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cardvault.card.piv import PivState, dump_state, load_state, process
from cardvault.card.piv.link_state import (
    LinkState,
    dump_link_state,
    join,
    load_link_state,
    split,
)
from cardvault.crypto.aead import SealBroken, aad, open_sealed, seal, wipe
from cardvault.crypto.kdf import hkdf_key
from cardvault.crypto.keyslots import CardKeyRecord, WrongSecret, unwrap_session
from cardvault.errors import Conflict, Unavailable
from cardvault.services import card_sessions
from cardvault.services.card_keys import open_record, seal_record
from cardvault.services.piv import issuance
from cardvault.services.piv.links import LinkClosed
from cardvault.services.piv.ports import Effects, Mode, ServicePorts
from cardvault.services.piv.secrets import PivSecrets, open_secrets, seal_secrets
from cardvault.services.piv.trail import ApduFacts, record_apdu
from cardvault.services.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, CardSession, CardStatus, PivCard, PivLink

__all__ = ["RelayAnswer", "RelayRequest", "StaleRequest", "relay"]

MAX_TRIES = 8
_USABLE = {
    Mode.USE: (CardStatus.ACTIVE.value,),
    Mode.ISSUANCE: (CardStatus.BLANK.value, CardStatus.ISSUED.value),
}


class StaleRequest(Conflict):
    code = "piv_stale_request"


class _Raced(Exception):
    """Another APDU for this card or link committed first: compute again."""


@dataclass(frozen=True, kw_only=True)
class RelayRequest:
    mode: Mode
    token: str = field(repr=False)
    #: SK of the card session (use) or the issuance key IK (issuance)
    key: bytes = field(repr=False)
    link_id: str
    seq: int
    apdu: bytes
    #: the reader powered the card up or reset it since the last APDU
    power_up: bool = False


@dataclass(frozen=True, kw_only=True)
class RelayAnswer:
    response: bytes
    card_status: str
    expires_at: datetime
    idle_expires_at: datetime
    #: at issuance: what the card management system still has to do
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class _Snapshot:
    session: CardSession
    link: PivLink
    card: Card
    piv: PivCard


@dataclass(kw_only=True)
class _Computed:
    response: bytes
    before: PivState
    after: PivState
    card_part: PivState
    link_part: LinkState
    effects: Effects
    secrets: PivSecrets


def relay(rt: Runtime, actor: Actor, req: RelayRequest) -> RelayAnswer:
    for _ in range(MAX_TRIES):
        snap = _snapshot(rt, req)
        if req.seq == snap.link.last_seq and snap.link.last_response is not None:
            return _answer(rt, snap, _replayed(req, snap.link))
        if req.seq <= snap.link.last_seq:
            raise StaleRequest("This request is older than one the card already answered.")
        computed = _compute(rt, snap, req)
        try:
            return _commit(rt, actor, snap, req, computed)
        except _Raced:
            continue
    raise Unavailable("The card is busy with other requests; try again.")


# -- snapshot ----------------------------------------------------------------------------------


def _snapshot(rt: Runtime, req: RelayRequest) -> _Snapshot:
    with rt.db() as session:
        row = session.scalar(
            select(CardSession).where(CardSession.token_hash == card_sessions.token_hash(req.token))
        )
        if row is None:
            raise card_sessions.SessionInvalid()
        link = session.get(PivLink, req.link_id)
        if link is None or link.session_id != row.id or link.mode != req.mode.value:
            raise LinkClosed("This card is no longer in the reader; start the connector again.")
        card = session.get(Card, link.card_id)
        piv = session.get(PivCard, link.card_id)
    if card is None or piv is None or card.status not in _USABLE[req.mode]:
        raise LinkClosed("This card can no longer be used here.")
    return _Snapshot(session=row, link=link, card=card, piv=piv)


def _dek_source(snap: _Snapshot, req: RelayRequest) -> bytearray:
    """Unwrap the DEK with the caller's key: proves the caller holds SK (or IK)."""
    try:
        if req.mode is Mode.USE:
            return unwrap_session(snap.session.session_wrap, req.key, session_id=snap.session.id)
        wrap = snap.link.issuance_wrap
        if wrap is None:
            raise LinkClosed("The issuance has ended.")
        return unwrap_session(wrap, req.key, session_id=issuance.issuance_wrap_id(snap.link.id))
    except WrongSecret:
        raise card_sessions.SessionInvalid("The key does not match this session.") from None


# -- compute -----------------------------------------------------------------------------------


def _compute(rt: Runtime, snap: _Snapshot, req: RelayRequest) -> _Computed:
    card_part = load_state(snap.piv.state.encode())
    link_part = LinkState() if req.power_up else load_link_state(snap.link.link_state.encode())
    before = join(card_part, link_part)
    secrets = open_secrets(rt.master_key, snap.card.id, snap.piv.secrets_version, snap.piv.secrets)
    dek = _dek_source(snap, req)

    @functools.cache
    def record() -> CardKeyRecord:
        return open_record(rt.master_key, snap.card)

    try:
        ports = ServicePorts(
            rt,
            mode=req.mode,
            card_id=snap.card.id,
            secrets=secrets,
            record=record,
            dek=lambda: bytearray(dek),
        )
        after, response = process(before, req.apdu, ports)
    finally:
        wipe(dek)
    new_card, new_link = split(after)
    return _Computed(
        response=response,
        before=before,
        after=after,
        card_part=new_card,
        link_part=new_link,
        effects=ports.effects,
        secrets=ports.effects.secrets or secrets,
    )


# -- commit ------------------------------------------------------------------------------------


def _commit(
    rt: Runtime, actor: Actor, snap: _Snapshot, req: RelayRequest, done: _Computed
) -> RelayAnswer:
    with transaction(rt.db) as session:
        row = _live_session(session, rt, actor, snap, req)
        card_changed = _save_card(session, rt, snap, done)
        _save_link(session, snap, req, done, rt.clock())
        card = _save_record(session, rt, snap, done) if done.effects.record else None
        acting = _actor(actor, row)
        use = req.mode is Mode.USE
        organisation_id = row.organisation_id if use else snap.card.organisation_id
        record_apdu(
            session, rt, acting, snap.card, organisation_id, _facts(req, row, done), done.effects
        )
        status, missing = snap.card.status, []
        if not use:
            public_keys = _public_keys(snap, done)
            if card_changed or card is not None:
                card = card or _locked_card(session, snap)
                missing = issuance.sync(
                    session, rt, acting, card, done.card_part, done.secrets, public_keys
                )
                status = card.status
            else:
                missing = issuance.missing_steps(done.card_part, done.secrets, public_keys)
        return RelayAnswer(
            response=done.response,
            card_status=status,
            expires_at=row.expires_at,
            idle_expires_at=row.idle_expires_at,
            missing=tuple(missing),
        )


def _facts(req: RelayRequest, row: CardSession, done: _Computed) -> ApduFacts:
    header = req.apdu[:4].ljust(4, b"\x00")
    return ApduFacts(
        cla=header[0],
        ins=header[1],
        p2=header[3],
        sw=int.from_bytes(done.response[-2:], "big"),
        before=done.before,
        after=done.after,
        session_id=row.id,
        link_id=req.link_id,
        mode=req.mode.value,
    )


def _live_session(
    session: Session, rt: Runtime, actor: Actor, snap: _Snapshot, req: RelayRequest
) -> CardSession:
    """The session is checked again as the APDU commits (network, expiry, role, card)."""
    if req.mode is Mode.USE:
        row, _card = card_sessions.use(session, rt, req.token, client_address=actor.client_address)
    else:
        row = card_sessions.require_role(
            session, rt, req.token, client_address=actor.client_address, roles=issuance.ISSUERS
        )
    if row.id != snap.session.id:
        raise LinkClosed("This card is no longer in the reader.")
    return row


def _save_card(session: Session, rt: Runtime, snap: _Snapshot, done: _Computed) -> bool:
    """CAS on the card's PIV row; False when this APDU changed nothing of the card."""
    state = dump_state(done.card_part).decode()
    effects = done.effects
    if state == snap.piv.state and not (effects.secrets or effects.public_keys):
        return False
    values: dict[str, object] = {
        "state": state,
        "version": PivCard.version + 1,
        "updated_at": rt.clock(),
    }
    if effects.secrets is not None:
        version = snap.piv.secrets_version + 1
        values["secrets"] = seal_secrets(rt.master_key, snap.card.id, version, effects.secrets)
        values["secrets_version"] = version
    if effects.public_keys:
        values["public_keys"] = _public_keys(snap, done)
    result = session.execute(
        update(PivCard)
        .where(PivCard.card_id == snap.card.id, PivCard.version == snap.piv.version)
        .values(**values)
    )
    if _rowcount(result) != 1:
        raise _Raced()
    return True


def _public_keys(snap: _Snapshot, done: _Computed) -> dict[str, str]:
    keys = dict(snap.piv.public_keys)
    for slot, spki in done.effects.public_keys.items():
        keys[f"{int(slot):02x}"] = base64.b64encode(spki).decode()
    return keys


def _save_link(
    session: Session, snap: _Snapshot, req: RelayRequest, done: _Computed, now: datetime
) -> None:
    result = session.execute(
        update(PivLink)
        .where(PivLink.id == snap.link.id, PivLink.version == snap.link.version)
        .values(
            link_state=dump_link_state(done.link_part).decode(),
            version=PivLink.version + 1,
            last_seq=req.seq,
            last_response=_seal_response(req, snap.link.id, done.response),
            last_used_at=now,
        )
    )
    if _rowcount(result) != 1:
        raise _Raced()


def _save_record(session: Session, rt: Runtime, snap: _Snapshot, done: _Computed) -> Card:
    card = _locked_card(session, snap)
    if card.record_version != snap.card.record_version:
        raise _Raced()
    assert done.effects.record is not None
    seal_record(session, rt.master_key, card, done.effects.record)
    return card


def _locked_card(session: Session, snap: _Snapshot) -> Card:
    card = session.get(Card, snap.card.id, with_for_update=True, populate_existing=True)
    if card is None or card.status not in _USABLE[Mode(snap.link.mode)]:
        raise LinkClosed("This card can no longer be used here.")
    return card


def _actor(actor: Actor, row: CardSession) -> Actor:
    prefix = "ra" if row.purpose == "ra" else "holder"
    return Actor(
        ref=f"{prefix}:{row.person_id}",
        display=f"{prefix} {row.person_id}",
        client_address=actor.client_address,
        request_id=actor.request_id,
    )


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# -- answers kept for a repeated request -------------------------------------------------------


def _response_key(req: RelayRequest, link_id: str) -> bytearray:
    return hkdf_key(req.key, link_id.encode(), b"cardvault/piv-last-response/v1")


def _seal_response(req: RelayRequest, link_id: str, response: bytes) -> bytes:
    key = _response_key(req, link_id)
    try:
        return seal(key, response, aad("piv-response", link_id, req.seq))
    finally:
        wipe(key)


def _replayed(req: RelayRequest, link: PivLink) -> bytes:
    assert link.last_response is not None
    key = _response_key(req, link.id)
    try:
        return bytes(open_sealed(key, link.last_response, aad("piv-response", link.id, req.seq)))
    except SealBroken:
        raise card_sessions.SessionInvalid("The key does not match this session.") from None
    finally:
        wipe(key)


def _answer(rt: Runtime, snap: _Snapshot, response: bytes) -> RelayAnswer:
    return RelayAnswer(
        response=response,
        card_status=snap.card.status,
        expires_at=snap.session.expires_at,
        idle_expires_at=snap.session.idle_expires_at,
    )
