"""Telling people what happened to their card: the transactional outbox (DESIGN §3.3).

Services call these functions *inside* the transaction that makes the change, so the message
exists exactly when the change does; :mod:`cardvault.services.notifications.dispatcher` sends
it after the commit. The template is rendered once here, against the real context, so that a
caller's mistake fails its own transaction instead of a send hours later.

A message's own link or code is the only secret it may carry (the templates refuse any
other key). It is sealed under the master key, bound to the row's id, and erased when the
message has been sent or has failed for good; everything else in ``context`` is plain.

Other features call the named helpers: :func:`passcode_changed`, :func:`device_added`,
:func:`device_removed`, :func:`security_key_added`, :func:`security_key_removed`; RA alerts:
:func:`not_me`, :func:`second_factor_lock`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault import json_types
from cardvault.crypto.aead import aad
from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.domain.vocabulary import NotificationStatus, RaRole
from cardvault.json_types import JsonObject, JsonValue
from cardvault.notify.message import EmailMessage, SmsMessage
from cardvault.notify.templates import (
    EmailTemplate,
    SmsTemplate,
    TemplateContext,
    TemplateValue,
    render_email,
    render_sms,
)
from cardvault.services.system.runtime import Runtime
from cardvault.store.models import Card, Notification, Organisation, Person, RaRoleGrant
from cardvault.store.queries.organisations import policy_of
from cardvault.store.types import new_id

#: set on a SQLAlchemy session that enqueued a message, so the dispatcher wakes after commit
ENQUEUED = "cardvault.notifications_enqueued"
_DATETIME = "$datetime"


class Channel(StrEnum):
    """How a message travels: email or SMS."""

    EMAIL = "email"
    SMS = "sms"


@dataclass(frozen=True, kw_only=True)
class FailedNotification:
    """What the RA sees of a message that could not be delivered (never its link or code)."""

    id: str
    channel: str
    template: str
    recipient: str
    card_id: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    failed_at: datetime | None


def enqueue(
    session: Session,
    rt: Runtime,
    *,
    channel: Channel,
    template: str,
    recipient: str,
    context: TemplateContext,
    secrets: Mapping[str, str] | None = None,
    organisation_id: str | None = None,
    card_id: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Queue one message in the caller's transaction; returns its id (= its message id)."""
    notification_id = new_id()
    message = render(
        rt, channel, template, recipient, notification_id, {**context, **(secrets or {})}
    )
    sealed = None
    if secrets:
        sealed = rt.master_key.seal(
            json.dumps(dict(secrets)).encode("utf-8"), aad=_secrets_aad(notification_id)
        )
    session.add(
        Notification(
            id=notification_id,
            channel=channel.value,
            recipient=message.to,
            template=template,
            context=_encode(context),
            sealed_secrets=sealed,
            organisation_id=organisation_id,
            card_id=card_id,
            status=NotificationStatus.PENDING,
            attempts=0,
            created_at=rt.clock(),
            next_attempt_at=rt.clock(),
            expires_at=expires_at,
        )
    )
    session.info[ENQUEUED] = True
    return notification_id


def render(
    rt: Runtime,
    channel: Channel | str,
    template: str,
    recipient: str,
    message_id: str,
    context: TemplateContext,
) -> EmailMessage | SmsMessage:
    """Render a template for a channel; raises UnknownTemplate or TemplateContextError."""
    values = {**context, "service_name": rt.settings.service_name}
    if channel == Channel.EMAIL:
        return render_email(template, to=recipient, message_id=message_id, context=values)
    return render_sms(template, to=recipient, message_id=message_id, context=values)


def message_of(rt: Runtime, row: Notification) -> EmailMessage | SmsMessage:
    """Rebuild the message of a queued row (its secrets unsealed for the moment of sending)."""
    return render(rt, row.channel, row.template, row.recipient, row.id, full_context(rt, row))


def full_context(rt: Runtime, row: Notification) -> dict[str, TemplateValue]:
    """The row's template context with its sealed link or code opened."""
    secrets: dict[str, str] = {}
    if row.sealed_secrets is not None:
        plain = rt.master_key.open(row.sealed_secrets, aad=_secrets_aad(row.id))
        try:
            secrets = json.loads(bytes(plain))
        finally:
            plain[:] = bytes(len(plain))
    return {**_decode(row.context), **secrets}


def _secrets_aad(notification_id: str) -> bytes:
    return aad("notification-secrets", notification_id)


def _encode(context: TemplateContext) -> JsonObject:
    """JSON for the context column; datetimes become tagged ISO strings."""
    encoded: JsonObject = json.loads(json.dumps(dict(context), default=_tagged))
    return encoded


def _tagged(value: object) -> JsonObject:
    if not isinstance(value, datetime):
        raise TypeError(f"a template context holds {type(value).__name__}, not JSON")
    return {_DATETIME: value.isoformat()}


def _decode(stored: JsonObject) -> dict[str, TemplateValue]:
    return {key: _decoded(value) for key, value in stored.items()}


def _decoded(value: JsonValue) -> TemplateValue:
    if isinstance(value, dict) and set(value) == {_DATETIME}:
        return datetime.fromisoformat(json_types.text(value, _DATETIME))
    return value


# --- holders ------------------------------------------------------------------------------


def support_contact(rt: Runtime, organisation: Organisation | None) -> str:
    """Whom a holder should contact: the organisation's RA contact, else the service's."""
    if organisation is not None:
        policy = policy_of(organisation)
        if policy.ra_contact != OrganisationPolicy().ra_contact:
            return policy.ra_contact
    return rt.settings.support_contact


def holder_name(person: Person) -> str:
    """How a message addresses the holder: forename, else the common name."""
    return person.forename or person.common_name


def to_holder(
    session: Session,
    rt: Runtime,
    card: Card,
    template: EmailTemplate,
    *,
    context: TemplateContext | None = None,
    secrets: Mapping[str, str] | None = None,
    expires_at: datetime | None = None,
) -> str | None:
    """Email the card's holder at their enrolled address; None when they have none."""
    person = session.get(Person, card.person_id)
    org = session.get(Organisation, card.organisation_id)
    assert person is not None
    if not person.email:
        return None
    base = {"holder_name": holder_name(person), "support_contact": support_contact(rt, org)}
    return enqueue(
        session,
        rt,
        channel=Channel.EMAIL,
        template=template.value,
        recipient=person.email,
        context={**base, **(context or {})},
        secrets=secrets,
        organisation_id=card.organisation_id,
        card_id=card.id,
        expires_at=expires_at,
    )


def _notice(
    session: Session, rt: Runtime, card: Card, template: EmailTemplate, **details: str
) -> str | None:
    """A notice of a change just made to the card: its ``details`` and when it happened."""
    return to_holder(session, rt, card, template, context={"at": rt.clock(), **details})


def passcode_changed(session: Session, rt: Runtime, card: Card) -> str | None:
    """Queue the passcode-changed email to the holder; its id, or None without an address."""
    return _notice(session, rt, card, EmailTemplate.PASSCODE_CHANGED)


def device_added(session: Session, rt: Runtime, card: Card, device_name: str) -> str | None:
    """Queue the phone-paired email to the holder; its id, or None without an address."""
    return _notice(session, rt, card, EmailTemplate.DEVICE_ADDED, device_name=device_name)


def device_removed(session: Session, rt: Runtime, card: Card, device_name: str) -> str | None:
    """Queue the phone-removed email to the holder; its id, or None without an address."""
    return _notice(session, rt, card, EmailTemplate.DEVICE_REMOVED, device_name=device_name)


def security_key_added(session: Session, rt: Runtime, card: Card, key_name: str) -> str | None:
    """Queue the security-key-added email; its id, or None without an address."""
    return _notice(session, rt, card, EmailTemplate.SECURITY_KEY_ADDED, key_name=key_name)


def security_key_removed(session: Session, rt: Runtime, card: Card, key_name: str) -> str | None:
    """Queue the security-key-removed email; its id, or None without an address."""
    return _notice(session, rt, card, EmailTemplate.SECURITY_KEY_REMOVED, key_name=key_name)


def card_changed(session: Session, rt: Runtime, card: Card, change: str) -> str | None:
    """The holder changed their card on "My card" (``change``: what, in words)."""
    return _notice(session, rt, card, EmailTemplate.CARD_CHANGED, change=change)


# --- RA alerts ----------------------------------------------------------------------------

ALERTED_ROLES = tuple(r for r in RaRole if r.is_alerted)


def ra_person_link(rt: Runtime, user_id: str) -> str:
    """Where an RA opens a holder and their card in the vRA Manager."""
    return f"{rt.settings.base_url.rstrip('/')}/ra/persons/{user_id}"


def not_me(
    session: Session, rt: Runtime, card: Card, organisation: Organisation, device_name: str
) -> list[str]:
    """ "This wasn't me": alert every RA manager and agent of ``organisation`` by email."""
    return _to_ras(
        session, rt, card, organisation, EmailTemplate.NOT_ME_ALERT, {"device_name": device_name}
    )


def second_factor_lock(
    session: Session, rt: Runtime, card: Card, organisation: Organisation, *, door: str
) -> list[str]:
    """Five wrong second factors in a row (DESIGN §3.3 revised): someone may know the
    holder's passcode. Alert every RA manager and agent of ``organisation`` by email;
    ``door`` says where it happened ("signing in", "the self-service passcode reset")."""
    return _to_ras(
        session, rt, card, organisation, EmailTemplate.SECOND_FACTOR_ALERT, {"door": door}
    )


def holder_removed_method(
    session: Session, rt: Runtime, card: Card, organisation: Organisation, method_name: str
) -> list[str]:
    """The holder removed a phone or a security key themselves: their RAs are told."""
    return _to_ras(
        session,
        rt,
        card,
        organisation,
        EmailTemplate.HOLDER_METHOD_REMOVED,
        {"method_name": method_name},
    )


def _to_ras(
    session: Session,
    rt: Runtime,
    card: Card,
    organisation: Organisation,
    template: EmailTemplate,
    context: TemplateContext,
) -> list[str]:
    """One email per RA manager or agent of ``organisation`` with an address, about ``card``."""
    holder = session.get(Person, card.person_id)
    assert holder is not None
    recipients = session.scalars(
        select(Person.email)
        .join(RaRoleGrant, RaRoleGrant.person_id == Person.id)
        .where(
            RaRoleGrant.organisation_id == organisation.id,
            RaRoleGrant.role.in_(ALERTED_ROLES),
            Person.email.is_not(None),
        )
        .distinct()
    )
    full = {
        "holder_name": holder.common_name,
        "organisation_name": organisation.name,
        "at": rt.clock(),
        "ra_link": ra_person_link(rt, holder.user_id),
        **context,
    }
    return [
        enqueue(
            session,
            rt,
            channel=Channel.EMAIL,
            template=template.value,
            recipient=address,
            context=full,
            organisation_id=organisation.id,
            card_id=card.id,
        )
        for address in sorted({a for a in recipients if a})
    ]


def invitation_code_sms(
    session: Session,
    rt: Runtime,
    card: Card,
    *,
    phone: str,
    code: str,
    valid_minutes: int,
    expires_at: datetime,
) -> str:
    """Queue the invitation code as an SMS to the holder's phone; its id. Raises
    InvalidPhoneNumber for a number SMS cannot reach."""
    return enqueue(
        session,
        rt,
        channel=Channel.SMS,
        template=SmsTemplate.INVITATION_CODE,
        recipient=phone,
        context={"valid_minutes": valid_minutes},
        secrets={"code": code},
        organisation_id=card.organisation_id,
        card_id=card.id,
        expires_at=expires_at,
    )


# --- what the RA sees ---------------------------------------------------------------------


def failed(rt: Runtime, organisation_id: str, *, limit: int = 100) -> list[FailedNotification]:
    """Messages of one organisation that could not be delivered, newest first."""
    with rt.db() as session:
        rows = session.scalars(
            select(Notification)
            .where(
                Notification.organisation_id == organisation_id,
                Notification.status == NotificationStatus.FAILED,
            )
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(max(1, min(limit, 1000)))
        )
        return [
            FailedNotification(
                id=row.id,
                channel=row.channel,
                template=row.template,
                recipient=row.recipient,
                card_id=row.card_id,
                attempts=row.attempts,
                last_error=row.last_error,
                created_at=row.created_at,
                failed_at=row.failed_at,
            )
            for row in rows
        ]
