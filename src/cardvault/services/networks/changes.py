"""Changing an organisation's client networks after it was created (DESIGN §3.6, revised):
an audited action of the operator (``cardvault org networks``) or of the organisation's RA
manager (the vRA Manager's networks page, through ``ra_networks``).

The change is applied to the row as it is when the transaction holds it (``SELECT … FOR
UPDATE``; SQLite's ``BEGIN IMMEDIATE`` serialises writers), so two changes on two instances
never lose one another; a page that shows the list first passes ``expected`` and is refused
if someone else changed it meanwhile. The ingress gate of this instance reads the lists
again at once, every other instance within a second (``services/networks/ingress.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.networks import changed_networks
from cardvault.services.audit import trail as audit
from cardvault.services.directory.errors import UnknownOrganisation
from cardvault.services.networks import ingress
from cardvault.services.networks.errors import NetworksChangedMeanwhile
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Organisation


@dataclass(frozen=True, kw_only=True)
class NetworksChange:
    """Replace the list whole, or add and remove entries (CIDRs as people type them)."""

    replace: tuple[str, ...] | None = None
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    #: a /0 newly on the list opens the organisation to the whole internet: say so explicitly
    allow_everywhere: bool = False
    #: the list the person was shown; the change is refused if it is no longer the list
    expected: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class OrganisationNetworks:
    """An organisation's network list, and whether this call changed it."""

    code: str
    name: str
    networks: tuple[str, ...]
    changed: bool = False


def show(rt: Runtime, code: str) -> OrganisationNetworks:
    """An organisation's network list; raises UnknownOrganisation."""
    with rt.db() as session:
        org = _org(session, code=code)
        return _view(org)


def change(
    rt: Runtime,
    actor: Actor,
    change: NetworksChange,
    *,
    code: str | None = None,
    org_id: str | None = None,
) -> OrganisationNetworks:
    """Apply ``change`` to the organisation named by ``code`` (operator) or ``org_id`` (an
    RA acting in it); audited with the old and the new list."""
    with transaction(rt.db) as session:
        org = _org(session, code=code, org_id=org_id, lock=True)
        old = tuple(org.allowed_networks or ())
        if change.expected is not None and tuple(change.expected) != old:
            raise NetworksChangedMeanwhile(
                f"The networks of {org.code} were changed by someone else meanwhile; check "
                "the list as it is now and make your change again."
            )
        new = changed_networks(
            old,
            replace=change.replace,
            add=change.add,
            remove=change.remove,
            allow_everywhere=change.allow_everywhere,
        )
        if new == old:
            return _view(org)
        org.allowed_networks = list(new)
        audit.record(
            session,
            rt,
            actor,
            action=AuditAction.ORGANISATION_NETWORKS_CHANGED,
            organisation_id=org.id,
            details={"old": list(old), "new": list(new)},
        )
        view = _view(org, changed=True)
    ingress.networks_changed(rt)
    return view


def _org(
    session: Session, *, code: str | None = None, org_id: str | None = None, lock: bool = False
) -> Organisation:
    query = select(Organisation)
    if org_id is not None:
        query = query.where(Organisation.id == org_id)
    else:
        query = query.where(Organisation.code == identifiers.org_code(code or ""))
    org = session.scalar(query.with_for_update() if lock else query)
    if org is None:
        raise UnknownOrganisation(
            f"There is no organisation with code {(code or '').strip().upper()}."
        )
    return org


def _view(org: Organisation, *, changed: bool = False) -> OrganisationNetworks:
    return OrganisationNetworks(
        code=org.code, name=org.name, networks=tuple(org.allowed_networks or ()), changed=changed
    )
