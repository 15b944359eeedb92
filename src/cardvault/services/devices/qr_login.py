"""Sign-in on a PC by scanning its QR code with the paired app (DESIGN §3.2, method "qr").

1. The PC makes an ephemeral P-256 key and asks for a sign-in request; the service stores
   the SHA-256 of a random code and the PC's public key, and the PC shows
   ``cardvault://login?…&code=…`` as a QR code.
2. The paired app scans it, shows where the request comes from, and the holder types the
   passcode in the app. The app sends code, passcode and decision in a JWE envelope, as a
   signed device request: possession of the device + the passcode.
3. The service opens the card, makes the card session *for the PC* (its network address,
   its name), and leaves the session token and SK for the PC as a JWE sealed to the PC's
   ephemeral key (ECDH-ES): the service cannot read them back. The PC polls and collects
   that result once.

A QR code can be photographed and relayed ("QRLjacking"): the app therefore shows the PC's
name and network address, and the organisation's network allow-list applies to the PC.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault import json_types
from cardvault.crypto import device as dcrypto
from cardvault.crypto.aead import wipe
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import SignInRoute
from cardvault.errors import InvalidInput, NotFound
from cardvault.json_types import JsonObject
from cardvault.services.audit import trail as audit
from cardvault.services.devices.channel import channel, qr_topic
from cardvault.services.devices.errors import QrRequestClosed, QrRequestInvalid
from cardvault.services.devices.pairing import token_hash
from cardvault.services.devices.requests import DeviceCaller, as_actor
from cardvault.services.devices.unlock import (
    check_passcode_text,
    open_session,
    open_with_passcode,
    require_route,
)
from cardvault.services.networks import allow_list as network
from cardvault.services.signin import factor_lockout
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Link, Organisation
from cardvault.store.queries import cards as card_queries
from cardvault.store.queries import links as link_queries
from cardvault.store.types import new_id

PURPOSE = "qr_login"
LIFETIME = timedelta(minutes=2)


def start(
    rt: Runtime, actor: Actor, *, public_jwk: JsonObject, client_name: str | None
) -> JsonObject:
    """A sign-in request for the PC: its id (to poll) and the URI to show as a QR code."""
    key = dcrypto.check_box_key(public_jwk)
    code = secrets.token_urlsafe(32)
    now = rt.clock()
    with transaction(rt.db) as session:
        link = Link(
            id=new_id(),
            purpose=PURPOSE,
            token_hash=token_hash(code),
            details={
                "pc_key": key,
                "client_name": (client_name or "")[:100] or None,
                "client_address": actor.client_address,
                "status": "pending",
            },
            created_at=now,
            expires_at=now + LIFETIME,
        )
        session.add(link)
    query = urlencode({"v": "1", "server": rt.settings.base_url, "request": link.id, "code": code})
    return {
        "request_id": link.id,
        "uri": f"cardvault://login?{query}",
        "expires_at": link.expires_at.isoformat(),
    }


def poll(rt: Runtime, request_id: str) -> JsonObject:
    """The request's state; once approved, the sealed result (handed out once)."""
    with transaction(rt.db) as session:
        link = session.get(Link, request_id, with_for_update=True)
        if link is None or link.purpose != PURPOSE:
            raise NotFound("There is no such sign-in request.")
        details = dict(link.details)
        state = details.get("status", "pending")
        if state == "pending" and rt.clock() >= link.expires_at:
            state = "expired"
        out: JsonObject = {"status": state, "expires_at": link.expires_at.isoformat()}
        if state == "approved" and details.get("result"):
            out["result"] = details.pop("result")
            details["status"] = "collected"
            link.details = details
        return out


def _pending(session: Session, rt: Runtime, code: str) -> Link:
    link = session.scalar(select(Link).where(Link.token_hash == token_hash(code)))
    if link is None or link.purpose != PURPOSE:
        raise QrRequestInvalid("This QR code is not a cardvault sign-in request.")
    if link.details.get("status") != "pending" or link.consumed_at is not None:
        raise QrRequestClosed("This sign-in request has already been answered.")
    if rt.clock() >= link.expires_at:
        raise QrRequestClosed(
            "This sign-in request has expired.", remedy="Start the sign-in again on the computer."
        )
    return link


def describe(rt: Runtime, caller: DeviceCaller, code: str) -> JsonObject:
    """What the app shows before the holder types the passcode."""
    with rt.db() as session:
        link = _pending(session, rt, code)
        org = session.get(Organisation, caller.organisation_id)
        assert org is not None
        return {
            "request_id": link.id,
            "client_name": link.details.get("client_name"),
            "client_address": link.details.get("client_address"),
            "organisation": org.code,
            "organisation_name": org.name,
            "expires_at": link.expires_at.isoformat(),
        }


def answer(
    rt: Runtime, caller: DeviceCaller, *, code: str, passcode: str | None, approve: bool
) -> JsonObject:
    """The holder's answer from the app: approve (with the passcode) or deny."""
    actor = as_actor(caller)
    with rt.db() as session:
        link = _pending(session, rt, code)
        card = session.get(Card, caller.card_id)
        org = session.get(Organisation, caller.organisation_id)
        assert card is not None and org is not None
    if not approve:
        return _deny(rt, actor, link, card, org)
    require_route(org, SignInRoute.QR, "sign-in by QR code")
    pc_address = json_types.text_or_none(link.details, "client_address")
    network.check_client(org, pc_address)
    dek = open_with_passcode(
        rt, actor, card, check_passcode_text(passcode), action=AuditAction.QR_PASSCODE
    )
    try:
        with transaction(rt.db) as session:
            fresh_link = _consume(session, rt, link.id)
            fresh = card_queries.passcode_right(session, card.id)
            factor_lockout.right(session, fresh.id)  # the device's signature was right
            opened = open_session(
                session,
                rt,
                actor,
                card=fresh,
                org=org,
                dek=dek,
                method="qr+device",
                client_address=pc_address,
            )
            result = dcrypto.seal_box(
                json_types.object_at(fresh_link.details, "pc_key"), opened.as_dict()
            )
            fresh_link.details = {**fresh_link.details, "status": "approved", "result": result}
            _audit(session, rt, actor, card, org, link, "success", None, opened.session_id)
    finally:
        wipe(dek)
    channel(rt).publish(qr_topic(link.id), {"type": "approved"})
    return {"status": "approved", "client_name": link.details.get("client_name")}


def _consume(session: Session, rt: Runtime, link_id: str) -> Link:
    # a QR request has no card until it is answered, so nothing revokes it: the one
    # statement every link is consumed with serves here as it is
    won = link_queries.consume_link(session, link_id, rt.clock())
    link = session.get(Link, link_id, with_for_update=True) if won else None
    if link is None:
        raise QrRequestClosed("This sign-in request has already been answered.")
    return link


def _deny(rt: Runtime, actor: Actor, link: Link, card: Card, org: Organisation) -> JsonObject:
    with transaction(rt.db) as session:
        fresh_link = _consume(session, rt, link.id)
        fresh_link.details = {**fresh_link.details, "status": "denied"}
        _audit(session, rt, actor, card, org, link, "failure", "denied on the device", None)
    channel(rt).publish(qr_topic(link.id), {"type": "denied"})
    return {"status": "denied", "client_name": link.details.get("client_name")}


def _audit(
    session: Session,
    rt: Runtime,
    actor: Actor,
    card: Card,
    org: Organisation,
    link: Link,
    outcome: str,
    reason: str | None,
    session_id: str | None,
) -> None:
    audit.record_for_card(
        session,
        rt,
        actor,
        card,
        action=AuditAction.AUTH_QR_LOGIN,
        outcome=outcome,
        reason=reason,
        organisation_id=org.id,
        details={
            "request": link.id,
            "client_name": link.details.get("client_name"),
            "client_address": link.details.get("client_address"),
            "session": session_id,
        },
    )
    if session_id:
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=AuditAction.SESSION_OPENED,
            organisation_id=org.id,
            details={"session": session_id, "purpose": "holder", "method": "qr+device"},
        )


def check_request_id(request_id: str) -> str:
    """The request id if it is one (a UUID); raises InvalidInput otherwise."""
    if not isinstance(request_id, str) or len(request_id) != 36:
        raise InvalidInput("That is not a sign-in request id.")
    return request_id
