"""The organisation policy is parsed once per row, and again only when the row's JSON changes."""

from __future__ import annotations

import pytest

from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.errors import InvalidInput
from cardvault.store.models import Organisation
from cardvault.store.queries.organisations import policy_of


def _org(policy: dict[str, object]) -> Organisation:
    return Organisation(code="T1", name="Trust", policy=policy)


def test_policy_of_parses_the_rows_json() -> None:
    assert policy_of(_org({"totp_window": 2})).totp_window == 2


def test_policy_of_returns_the_same_object_for_the_same_row() -> None:
    org = _org({"session_idle_minutes": 30})
    assert policy_of(org) is policy_of(org)


def test_policy_of_parses_again_when_the_policy_is_replaced() -> None:
    org = _org({"totp_window": 2})
    first = policy_of(org)
    org.policy = {"totp_window": 3}
    assert policy_of(org) is not first
    assert policy_of(org).totp_window == 3


def test_policy_of_no_organisation_is_the_default_policy() -> None:
    assert policy_of(None) == OrganisationPolicy()


def test_policy_of_refuses_an_unknown_setting() -> None:
    with pytest.raises(InvalidInput):
        policy_of(_org({"no_such_setting": True}))
