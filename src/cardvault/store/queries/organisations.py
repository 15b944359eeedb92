"""An organisation's policy, parsed once per row.

The policy is stored as JSON on the organisation; ``policy_of`` parses it into the frozen
``OrganisationPolicy`` the first time a row's policy is read, and hands the same object back
afterwards, so a sign-in that asks five questions of it parses it once. The cache is keyed on
the row object (one per session and transaction) and on the JSON value it was parsed from:
a row whose ``policy`` is assigned a new value is parsed again.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.store.models import Organisation

_PARSED: WeakKeyDictionary[Organisation, tuple[Any, OrganisationPolicy]] = WeakKeyDictionary()


def policy_of(org: Organisation | None) -> OrganisationPolicy:
    """The organisation's policy; the defaults when there is no organisation."""
    if org is None:
        return OrganisationPolicy()
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
