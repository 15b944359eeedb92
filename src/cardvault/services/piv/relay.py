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

Most APDUs of a holder's link change only the link (its state, the kept answer) and leave no
audit event: they commit with SQLAlchemy Core on a plain connection -- the same statements
in one transaction -- since the ORM's unit of work (a Session, its transaction bookkeeping
and events) cost more than the statements (issue 16). The others go through the ORM, which
the audit trail and the card's key record need.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from cardvault.card.apdu import SHORT_MAX, CommandApdu, IsoIns, Sw, status_word
from cardvault.card.piv import PivState, dump_state, load_state, process
from cardvault.card.piv.link_state import (
    LinkState,
    dump_link_state,
    join,
    load_link_state,
    split,
)
from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import CardKeyRecord, WrongSecret, unwrap_session
from cardvault.domain.vocabulary import CardStatus
from cardvault.errors import Unavailable
from cardvault.services.cards.sealing import open_record, seal_record
from cardvault.services.piv import issuance, snapshot, statements
from cardvault.services.piv.answers import standing_answers
from cardvault.services.piv.card_pin import blocked_since
from cardvault.services.piv.errors import LinkClosed, StaleRequest
from cardvault.services.piv.kept import keep, kept
from cardvault.services.piv.ports import Effects, Mode, ServicePorts
from cardvault.services.piv.recheck import PinRecheck
from cardvault.services.piv.secrets import PivSecrets, open_secrets, seal_secrets
from cardvault.services.piv.snapshot import Snapshot
from cardvault.services.piv.trail import ApduFacts, apdu_events, record_apdu
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.errors import SessionInvalid
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.services.transport.envelopes import remember_jti_in
from cardvault.store.db import transaction
from cardvault.store.models import Card
from cardvault.store.queries.rows import SessionRow

__all__ = ["RelayAnswer", "RelayRequest", "relay"]

MAX_TRIES = 8
#: how stale a session's idle timer may get before an APDU restarts it
TOUCH_EVERY = timedelta(seconds=5)
_NOTHING_MISSING: tuple[str, ...] = ()
_OK = Sw.SUCCESS.wire()
_GET_RESPONSE = CommandApdu(cla=0, ins=IsoIns.GET_RESPONSE, p1=0, p2=0, ne=SHORT_MAX).to_bytes()


#: what the prepared UPDATEs run on: the ORM's unit of work, or a plain connection
Writer = Session | Connection


class _Raced(Exception):
    """Another APDU for this card or link committed first: compute again."""


@dataclass(frozen=True, kw_only=True)
class RelayRequest:
    """One APDU for the card behind a reader link, with its sequence number."""

    mode: Mode
    token: str = field(repr=False)
    #: SK of the card session (use) or the issuance key IK (issuance)
    key: bytes = field(repr=False)
    link_id: str
    seq: int
    apdu: bytes
    #: the reader powered the card up or reset it since the last APDU
    power_up: bool = False
    #: answer with all of a long response at once (the connector cuts it up for GET RESPONSE)
    drain: bool = False
    #: the earlier parts of a chained command (CLA 10) the connector acknowledged itself
    chain: tuple[bytes, ...] = ()
    #: the link channel's request id, spent with the APDU (None: spent when it was opened)
    jti: str | None = None
    jti_expires: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class RelayAnswer:
    """The card's response to an APDU, and the link's state after it."""

    response: bytes
    card_status: CardStatus
    expires_at: datetime
    idle_expires_at: datetime
    #: at issuance: what the card management system still has to do
    missing: tuple[str, ...] = ()
    #: ``response`` is the whole answer of a command whose answer was longer than its Ne
    whole: bool = False
    #: answers the connector may give until its next request (see answers.py)
    standing: dict[bytes, bytes] = field(default_factory=dict)


@dataclass(kw_only=True)
class _Computed:
    recheck: PinRecheck
    response: bytes
    whole: bool
    before: PivState
    after: PivState
    card_part: PivState
    link_part: LinkState
    effects: Effects
    secrets: PivSecrets
    standing: dict[bytes, bytes]


def relay(rt: Runtime, actor: Actor, req: RelayRequest) -> RelayAnswer:
    """Run one APDU on the card behind a reader link. Raises StaleRequest for a request
    older than one already answered, Unavailable when the card stays busy after a few tries,
    and what taking the snapshot raises (LinkClosed, SessionInvalid)."""
    for _ in range(MAX_TRIES):
        snap = snapshot.take(
            rt, actor, mode=req.mode, token=req.token, link_id=req.link_id, jti=req.jti
        )
        if req.seq == snap.link.last_seq and snap.link.last_response is not None:
            answer = kept(req.key, snap.link.id, req.seq, snap.link.last_response)
            if req.jti is not None:
                with rt.engine.begin() as conn:
                    _spend(conn, req)
            return _answer(snap, *answer)
        if req.seq <= snap.link.last_seq:
            raise StaleRequest("This request is older than one the card already answered.")
        computed = _compute(rt, snap, req)
        try:
            return _commit(rt, actor, snap, req, computed)
        except _Raced:
            continue
    raise Unavailable("The card is busy with other requests; try again.")


@functools.lru_cache(maxsize=256)
def _card_state(stored: str) -> PivState:
    """A card's stored state, parsed once while it does not change (most APDUs leave it
    as it is; PivState is immutable, so the parsed value can be shared)."""
    return load_state(stored.encode())


def _dek_source(snap: Snapshot, req: RelayRequest) -> bytearray:
    """Unwrap the DEK with the caller's key: proves the caller holds SK (or IK)."""
    try:
        if req.mode is Mode.USE:
            return unwrap_session(snap.session.session_wrap, req.key, session_id=snap.session.id)
        wrap = snap.link.issuance_wrap
        if wrap is None:
            raise LinkClosed("The issuance has ended.")
        return unwrap_session(wrap, req.key, session_id=issuance.issuance_wrap_id(snap.link.id))
    except WrongSecret:
        raise SessionInvalid("The key does not match this session.") from None


# -- compute -----------------------------------------------------------------------------------


def _compute(rt: Runtime, snap: Snapshot, req: RelayRequest) -> _Computed:
    card_part = _card_state(snap.piv.state)
    link_part = LinkState() if req.power_up else load_link_state(snap.link.link_state.encode())
    before = join(card_part, link_part)
    secrets = open_secrets(rt.master_key, snap.card.id, snap.piv.secrets_version, snap.piv.secrets)
    dek = _dek_source(snap, req)

    @functools.cache
    def record() -> CardKeyRecord:
        return open_record(rt.master_key, snap.card)

    recheck = PinRecheck.load(
        rt.master_key,
        link_id=snap.link.id,
        caller_key=req.key,
        blob=snap.link.pin_recheck,
        now=rt.clock(),
    )
    try:
        ports = ServicePorts(
            rt,
            mode=req.mode,
            card_id=snap.card.id,
            secrets=secrets,
            record=record,
            dek=lambda: bytearray(dek),
            recheck=recheck,
            pin_minimum=snap.policy.card_pin_min_length,
        )
        after, response = _run(before, req, ports)
        whole = req.drain and Sw.more_waiting(status_word(response))
        if whole:
            after, response = _drain(after, response, ports)
    finally:
        wipe(dek)
    new_card, new_link = split(after)
    return _Computed(
        recheck=recheck,
        response=response,
        whole=whole,
        before=before,
        after=after,
        card_part=new_card,
        link_part=new_link,
        effects=ports.effects,
        secrets=ports.effects.secrets or secrets,
        standing=standing_answers(after),
    )


# -- commit ------------------------------------------------------------------------------------


def _run(state: PivState, req: RelayRequest, ports: ServicePorts) -> tuple[PivState, bytes]:
    """The chain's parts, then the command; a part the card refuses ends it with that answer."""
    for part in req.chain:
        state, response = process(state, part, ports)
        if response != _OK:
            return state, response
    return process(state, req.apdu, ports)


def _drain(state: PivState, response: bytes, ports: ServicePorts) -> tuple[PivState, bytes]:
    """Collect every piece of a long answer with GET RESPONSE, as the client would."""
    data = response[:-2]
    while Sw.more_waiting(status_word(response)):
        state, response = process(state, _GET_RESPONSE, ports)
        data += response[:-2]
    return state, data + response[-2:]


def _commit(
    rt: Runtime, actor: Actor, snap: Snapshot, req: RelayRequest, done: _Computed
) -> RelayAnswer:
    row = snap.session
    facts = _facts(req, row, done)
    events = apdu_events(facts, done.effects)
    if not events and _link_only(snap, req, done):
        return _commit_link(rt, snap, req, done)
    with transaction(rt.db) as session:
        _spend(session.connection(), req)
        expires_at, idle_expires_at = _touch(session, rt, snap)
        changed = _save_card(session, rt, snap, done)
        _save_link(session, rt, snap, req, done)
        card = _save_record(session, rt, snap, done) if done.effects.record else None
        acting = card_sessions.owner(actor, row)
        use = req.mode is Mode.USE
        organisation_id = row.organisation_id if use else snap.card.organisation_id
        record_apdu(session, rt, acting, snap.card, organisation_id, facts, events)
        status, missing = snap.card.status, _NOTHING_MISSING
        if req.mode is Mode.ISSUANCE:
            status, missing = _issuance_progress(session, rt, acting, snap, done, card, changed)
        return RelayAnswer(
            response=done.response,
            card_status=status,
            expires_at=expires_at,
            idle_expires_at=idle_expires_at,
            missing=missing,
            whole=done.whole,
            standing=done.standing,
        )


def _link_only(snap: Snapshot, req: RelayRequest, done: _Computed) -> bool:
    """A holder's APDU that changes nothing of the card: only the link is written."""
    effects = done.effects
    return (
        req.mode is Mode.USE
        and not (effects.secrets or effects.public_keys or effects.record)
        and done.card_part == _card_state(snap.piv.state)
    )


def _commit_link(rt: Runtime, snap: Snapshot, req: RelayRequest, done: _Computed) -> RelayAnswer:
    """:func:`_commit` of a link-only APDU on a plain connection: the jti, the session's idle
    timer and the link's compare-and-swap, in one transaction (a writer's, on SQLite)."""
    with rt.engine.begin() as conn:
        _spend(conn, req)
        expires_at, idle_expires_at = _touch(conn, rt, snap)
        _save_link(conn, rt, snap, req, done)
    return RelayAnswer(
        response=done.response,
        card_status=snap.card.status,
        expires_at=expires_at,
        idle_expires_at=idle_expires_at,
        whole=done.whole,
        standing=done.standing,
    )


def _issuance_progress(
    session: Session,
    rt: Runtime,
    actor: Actor,
    snap: Snapshot,
    done: _Computed,
    card: Card | None,
    changed: bool,
) -> tuple[CardStatus, tuple[str, ...]]:
    """At issuance: issue the card once complete; always say what is still missing."""
    public_keys = _public_keys(snap, done)
    if not (changed or card is not None):
        missing = issuance.missing_steps(done.card_part, done.secrets, public_keys)
        return snap.card.status, tuple(missing)
    card = card or _locked_card(session, snap)
    missing = issuance.sync(session, rt, actor, card, done.card_part, done.secrets, public_keys)
    return card.status, tuple(missing)


def _facts(req: RelayRequest, row: SessionRow, done: _Computed) -> ApduFacts:
    header = req.apdu[:4].ljust(4, b"\x00")
    return ApduFacts(
        cla=header[0],
        ins=header[1],
        p2=header[3],
        sw=status_word(done.response),
        before=done.before,
        after=done.after,
        session_id=row.id,
        link_id=req.link_id,
        mode=req.mode.value,
    )


def _spend(conn: Connection, req: RelayRequest) -> None:
    """Remember the link channel request's ``jti`` with the APDU: a replay is refused."""
    if req.jti is not None:
        assert req.jti_expires is not None
        remember_jti_in(conn, req.jti, req.jti_expires)


def _touch(session: Writer, rt: Runtime, snap: Snapshot) -> tuple[datetime, datetime]:
    """Restart the session's idle timer, only if it still lives (logout, lock, revocation
    and expiry delete or end it): the APDU commits inside a live session or not at all.

    A timer restarted less than ``TOUCH_EVERY`` ago is left as it is (a signature is ~40
    APDUs in a fraction of a second): then the link's compare-and-swap, which follows,
    finds the session alive instead (its link is deleted with it)."""
    now = rt.clock()
    row = snap.session
    policy = snap.policy
    idle = min(now + timedelta(minutes=policy.session_idle_minutes), row.expires_at)
    if idle - row.idle_expires_at < TOUCH_EVERY:
        return row.expires_at, row.idle_expires_at
    changed = _execute(
        session, statements.TOUCH_SESSION, {"where_session": row.id, "now": now, "idle": idle}
    )
    if changed != 1:
        raise SessionInvalid("The session has ended; sign in again.")
    return row.expires_at, idle


def _save_card(session: Session, rt: Runtime, snap: Snapshot, done: _Computed) -> bool:
    """CAS on the card's PIV row; False when this APDU changed nothing of the card."""
    effects = done.effects
    unchanged = done.card_part == _card_state(snap.piv.state)
    if unchanged and not (effects.secrets or effects.public_keys):
        return False
    state = snap.piv.state if unchanged else dump_state(done.card_part).decode()
    piv = snap.piv
    values: dict[str, object] = {
        "new_pin_blocked_at": blocked_since(piv.pin_blocked_at, done.card_part, rt.clock()),
        "where_card": snap.card.id,
        "seen": piv.version,
        "new_state": state,
        "new_secrets": piv.secrets,
        "new_secrets_version": piv.secrets_version,
        "new_public_keys": piv.public_keys,
        "now": rt.clock(),
    }
    if effects.secrets is not None:
        version = piv.secrets_version + 1
        values["new_secrets"] = seal_secrets(rt.master_key, snap.card.id, version, effects.secrets)
        values["new_secrets_version"] = version
    if effects.public_keys:
        values["new_public_keys"] = _public_keys(snap, done)
    if _execute(session, statements.SAVE_CARD, values) != 1:
        raise _Raced()
    return True


def _public_keys(snap: Snapshot, done: _Computed) -> dict[str, str]:
    keys = dict(snap.piv.public_keys)
    for slot, spki in done.effects.public_keys.items():
        keys[f"{int(slot):02x}"] = base64.b64encode(spki).decode()
    return keys


def _save_link(
    session: Writer, rt: Runtime, snap: Snapshot, req: RelayRequest, done: _Computed
) -> None:
    now = rt.clock()
    link = snap.link
    values: dict[str, object] = {
        "where_link": link.id,
        "seen": link.version,
        "new_link_state": dump_link_state(done.link_part).decode(),
        "new_last_seq": req.seq,
        "new_last_response": keep(req.key, link.id, req.seq, done.response, whole=done.whole),
        "new_pin_recheck": link.pin_recheck,
        "now": now,
    }
    effects = done.effects
    if effects.recheck_clear:
        values["new_pin_recheck"] = None
    elif effects.recheck_block is not None:
        values["new_pin_recheck"] = done.recheck.seal(rt.master_key, effects.recheck_block, now)
    if _execute(session, statements.SAVE_LINK, values) != 1:
        raise _Raced()


def _save_record(session: Session, rt: Runtime, snap: Snapshot, done: _Computed) -> Card:
    card = _locked_card(session, snap)
    if card.record_version != snap.card.record_version:
        raise _Raced()
    assert done.effects.record is not None
    seal_record(session, rt.master_key, card, done.effects.record)
    return card


def _locked_card(session: Session, snap: Snapshot) -> Card:
    card = session.get(Card, snap.card.id, with_for_update=True, populate_existing=True)
    if card is None or card.status not in snapshot.USABLE[Mode(snap.link.mode)]:
        raise LinkClosed("This card can no longer be used here.")
    return card


def _execute(session: Writer, statement: Executable, params: dict[str, object]) -> int:
    """Run one of the prepared UPDATEs (statements.py); returns the rows it changed."""
    return _rowcount(session.execute(statement, params))


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _answer(snap: Snapshot, response: bytes, whole: bool) -> RelayAnswer:
    return RelayAnswer(
        response=response,
        card_status=snap.card.status,
        expires_at=snap.session.expires_at,
        idle_expires_at=snap.session.idle_expires_at,
        whole=whole,
    )
