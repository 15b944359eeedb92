"""The pure checks of adding people (issue 19): cells a spreadsheet would run as formulas,
and fields in canonical form with the field that is wrong."""

from __future__ import annotations

import pytest

from cardvault.errors import InvalidInput
from cardvault.services.ra.people import formula_problem, new_member


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("forename", "=cmd|' /C calc'!A0"),
        ("surname", "+SUM(1)"),
        ("surname", "-2+3"),
        ("email", "@SUM(A1)"),
        ("forename", "  =1+1"),
        ("forename", "\t=1"),
        ("forename", "\rx"),
        ("mobile", "+cmd"),
        ("mobile", "-44 7700"),
        ("mobile", "=44"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_named(name: str, value: str) -> None:
    problem = formula_problem(name, value)
    assert problem is not None
    assert "formula" in problem


@pytest.mark.parametrize(
    ("name", "value"),
    [("forename", "Anne-Marie"), ("mobile", "+44 7700 900123"), ("email", "a@example.org"),
     ("surname", "O'Brien"), ("mobile", "")],
)  # fmt: skip
def test_ordinary_cells_are_not_formulas(name: str, value: str) -> None:
    assert formula_problem(name, value) is None


def test_new_member_gives_the_canonical_fields() -> None:
    member = new_member(
        user_id="555 000 900 001", forename=" Nora ", surname="Newcomer",
        email="Nora@Example.org", mobile="",
    )  # fmt: skip
    assert member.user_id == "555000900001"
    assert member.forename == "Nora"
    assert member.phone is None


def test_new_member_names_the_field_of_a_formula() -> None:
    with pytest.raises(InvalidInput) as caught:
        new_member(user_id="555000900001", forename="Nora", surname="=1", email="", mobile="")
    assert caught.value.field == "surname"
