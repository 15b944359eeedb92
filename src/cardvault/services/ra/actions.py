"""What an RA may do through the API, scoped to the organisation they act in (DESIGN §3.6).

Every function takes the RA's session token, checks the role they chose is still granted,
and passes the acting organisation down so that objects outside it are simply not found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import RaPermission, RaRole, roles_allowed
from cardvault.json_types import JsonInput
from cardvault.services.audit import trail as audit
from cardvault.services.cards import issuance
from cardvault.services.cards import state as cards
from cardvault.services.cards.views import CardView
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Organisation, Person

#: the roles that may change cards, read people, read the audit log (RaRole's permissions)
ISSUERS = roles_allowed(RaPermission.MANAGE_CARDS)
READERS = roles_allowed(RaPermission.VIEW_PEOPLE)
AUDITORS = roles_allowed(RaPermission.READ_AUDIT)


@dataclass(frozen=True, kw_only=True)
class RaContext:
    """Who acts in the vRA Manager: the RA user, their organisation and chosen role."""

    actor: Actor
    organisation_id: str
    organisation_code: str
    role: str

    def can(self, permission: str) -> bool:
        """Whether the role this RA acts under holds ``permission`` (pages show only what it
        allows; the routes check it again)."""
        return RaRole(self.role).allows(RaPermission(permission))

    def audit_act(
        self,
        session: Session,
        rt: Runtime,
        action: AuditAction,
        *,
        person_id: str | None = None,
        card_id: str | None = None,
        details: Mapping[str, JsonInput] | None = None,
    ) -> None:
        """Audit what this RA did, as them, on the chain of the organisation they act in
        (DESIGN §3.6: an RA's act in one organisation is that organisation's record), in
        the caller's transaction."""
        audit.record(
            session,
            rt,
            self.actor,
            action=action,
            organisation_id=self.organisation_id,
            person_id=person_id,
            card_id=card_id,
            details=details,
        )


def context(
    rt: Runtime,
    token: str | None,
    client_address: str | None,
    roles: tuple[str, ...],
    *,
    session_id: str | None = None,
) -> RaContext:
    """The RA's acting organisation and role, from the API's bearer token or, for the web
    pages, the card session id their hashed cookie leads to."""
    with rt.db.begin() as session:
        row = card_sessions.require_role(
            session, rt, token, client_address=client_address, roles=roles, session_id=session_id
        )
        org = session.get(Organisation, row.acting_organisation_id)
        person = session.get(Person, row.person_id)
        assert org is not None and person is not None
        actor = Actor(
            ref=f"ra:{person.id}", display=person.common_name, client_address=client_address
        )
        return RaContext(
            actor=actor,
            organisation_id=org.id,
            organisation_code=org.code,
            role=row.acting_role or "",
        )


def issue(
    rt: Runtime, ctx: RaContext, *, user_id: str, issuance_passcode: str, key_algorithm: str | None
) -> issuance.IssuedCard:
    """Issue a card to a person of the RA's organisation; raises what issuing raises
    (InvalidInput, UnknownPerson, NotAMember, CardExists)."""
    return issuance.issue_card(
        rt,
        ctx.actor,
        issuance.IssueRequest(
            organisation=ctx.organisation_code,
            user_id=user_id,
            issuance_passcode=issuance_passcode,
            key_algorithm=key_algorithm,
        ),
    )


def show(rt: Runtime, ctx: RaContext, serial: str) -> CardView:
    """A card of the RA's organisation (NotFound for any other)."""
    return cards.show(rt, serial, organisation_id=ctx.organisation_id)


def revoke(rt: Runtime, ctx: RaContext, serial: str, reason: str) -> str:
    """Revoke a card of the RA's organisation; its serial. Raises NotFound outside it."""
    card = issuance.revoke_card(
        rt, ctx.actor, serial, reason=reason, organisation_id=ctx.organisation_id
    )
    return card.status


def roles(
    rt: Runtime, token: str | None, client_address: str | None, *, session_id: str | None = None
) -> list[dict[str, str]]:
    """The RA roles the session's user holds in the organisation they signed in to (only
    that one: chosen at sign-in, or the only one that admitted it); raises SessionInvalid."""
    with rt.db.begin() as session:
        if session_id is not None:
            row, _card = card_sessions.use_id(
                session, rt, session_id, client_address=client_address, purpose="ra"
            )
        else:
            row, _card = card_sessions.use(
                session, rt, token or "", client_address=client_address, purpose="ra"
            )
        return [
            {"organisation": o.code, "name": o.name, "role": r}
            for o, r in card_sessions.ra_roles(session, row.person_id, row.organisation_id)
        ]
