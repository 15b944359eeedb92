"""An organisation's policy, parsed once per row.

The policy is stored as JSON on the organisation; ``policy_of`` parses it into the frozen
``OrganisationPolicy`` the first time a row's policy is read, and hands the same object back
afterwards, so a sign-in that asks five questions of it parses it once. The cache is keyed on
the row object (one per session and transaction) and on the JSON value it was parsed from:
a row whose ``policy`` is assigned a new value is parsed again.

A hot path that only reads an organisation (a sign-in's identification) reads it as an
:class:`OrganisationRow` with Core instead: a frozen value whose policy is parsed once, on
first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Column

from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.json_types import JsonObject
from cardvault.store.models import Organisation, table_of


@dataclass(frozen=True, eq=False)
class OrganisationRow:
    """An organisation as a read-only hot path holds it: its columns, no ORM object.
    Fields are named like the table's columns, in the order ``ROW_COLUMNS`` selects them."""

    id: str
    code: str
    name: str
    policy: JsonObject = field(repr=False)
    allowed_networks: list[str] = field(repr=False)

    @cached_property
    def parsed_policy(self) -> OrganisationPolicy:
        """The policy, parsed on first use (a frozen value: its JSON never changes)."""
        return parse_policy(self.policy)


#: the columns of an :class:`OrganisationRow`, in order: ``OrganisationRow(*row)``
ROW_COLUMNS: tuple[Column[Any], ...] = tuple(
    table_of(Organisation).c[name] for name in ("id", "code", "name", "policy", "allowed_networks")
)
#: an organisation row or its ORM object: what an organisation's readers accept
AnyOrg = Organisation | OrganisationRow

_PARSED: WeakKeyDictionary[Organisation, tuple[Any, OrganisationPolicy]] = WeakKeyDictionary()


def policy_of(org: AnyOrg | None) -> OrganisationPolicy:
    """The organisation's policy; the defaults when there is no organisation."""
    if org is None:
        return OrganisationPolicy()
    if isinstance(org, OrganisationRow):
        return org.parsed_policy
    raw = org.policy
    cached = _PARSED.get(org)
    if cached is not None and cached[0] is raw:
        return cached[1]
    parsed = parse_policy(raw)
    _PARSED[org] = (raw, parsed)
    return parsed


def parse_policy(raw: Any) -> OrganisationPolicy:
    """A policy read without its row (the PC/SC relay reads plain rows, not ORM objects)."""
    return OrganisationPolicy.from_dict(raw)
