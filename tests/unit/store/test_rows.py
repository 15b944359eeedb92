"""A view copies a row's same-named columns; derived fields are given, not copied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from cardvault.services.directory.views import OrganisationView, PersonView
from cardvault.store.models import Organisation, Person
from cardvault.store.rows import view_of


@dataclass(frozen=True, kw_only=True)
class _Named:
    code: str
    name: str


def test_view_of_copies_the_columns_of_the_same_names() -> None:
    org = Organisation(code="T1", name="Trust")
    assert view_of(_Named, org) == _Named(code="T1", name="Trust")


def test_view_of_takes_derived_fields_as_given() -> None:
    org = Organisation(code="T1", name="Trust")
    assert view_of(_Named, org, name="Other") == _Named(code="T1", name="Other")


def test_view_of_a_field_the_row_lacks_is_an_error() -> None:
    @dataclass(frozen=True)
    class Wrong:
        no_such_column: str

    with pytest.raises(AttributeError):
        view_of(Wrong, Organisation(code="T1", name="Trust"))


def test_organisation_view_parses_the_policy_and_freezes_the_networks() -> None:
    org = Organisation(
        id="o1",
        code="T1",
        name="Trust",
        policy={"totp_window": 2},
        allowed_networks=["10.0.0.0/8"],
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    view = OrganisationView.of(org)
    assert (view.code, view.networks, view.policy.totp_window) == ("T1", ("10.0.0.0/8",), 2)


def test_person_view_name_is_the_common_name() -> None:
    person = Person(
        id="p1",
        user_id="555000000001",
        forename="Alice",
        surname="Example",
        email=None,
        phone=None,
        common_name="Dr Alice Example",
    )
    assert PersonView.of(person).name == "Dr Alice Example"
