"""What the shells see of organisations and persons: frozen views, never the rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.domain.vocabulary import RaRole
from cardvault.store.models import Organisation, Person
from cardvault.store.queries.organisations import policy_of
from cardvault.store.rows import view_of


@dataclass(frozen=True, kw_only=True)
class OrganisationView:
    """An organisation, its networks and parsed policy, as the shells see it."""

    id: str
    code: str
    name: str
    networks: tuple[str, ...]
    policy: OrganisationPolicy
    created_at: datetime

    @classmethod
    def of(cls, org: Organisation) -> OrganisationView:
        """The view of an organisation row, its policy parsed."""
        return view_of(cls, org, networks=tuple(org.allowed_networks), policy=policy_of(org))


@dataclass(frozen=True, kw_only=True)
class PersonView:
    """A person, as the shells see them."""

    id: str
    user_id: str
    forename: str
    surname: str
    email: str | None
    phone: str | None
    common_name: str

    @classmethod
    def of(cls, person: Person) -> PersonView:
        """The view of a person row."""
        return view_of(cls, person)

    @property
    def name(self) -> str:
        """The name people read: the directory's common name."""
        return self.common_name


@dataclass(frozen=True, kw_only=True)
class RoleView:
    """An RA role a person holds in one organisation."""

    organisation: str
    role: RaRole


@dataclass(frozen=True, kw_only=True)
class PersonDetails:
    """A person with their organisations and RA roles."""

    person: PersonView
    #: the codes of the organisations the person is a member of, in code order
    organisations: tuple[str, ...]
    roles: tuple[RoleView, ...]
