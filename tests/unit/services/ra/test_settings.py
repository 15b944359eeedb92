"""The settings form's checks (issue 19): every problem at once, each naming its field, in
words a person understands."""

from __future__ import annotations

import pytest

from cardvault.services.ra.settings import NUMBERS, SettingsForm, problems

GOOD = {n.name: str(max(n.low, min(n.high, 30))) for n in NUMBERS} | {
    "session_absolute_minutes": "720",
    "certificate_days": "1095",
}


def _form(**numbers: str) -> SettingsForm:
    return SettingsForm(allowed_methods=("email",), numbers={**GOOD, **numbers}, switches={})


def test_a_good_form_has_no_problems() -> None:
    assert problems(_form()) == []


def test_each_bad_number_is_named_with_its_range() -> None:
    found = problems(_form(reset_link_minutes="soon", card_pin_min_length="9"))
    assert [p.field for p in found] == ["reset_link_minutes", "card_pin_min_length"]
    assert found[0].message == "Reset links last: enter a whole number of minutes from 5 to 1440."


def test_idle_longer_than_the_session_and_renewal_longer_than_the_lifetime_are_refused() -> None:
    found = problems(_form(session_idle_minutes="800", renew_days="1095"))
    assert [p.field for p in found] == ["session_idle_minutes", "renew_days"]


def test_no_sign_in_route_or_an_unknown_one_is_refused() -> None:
    for routes in ((), ("carrier_pigeon",)):
        form = SettingsForm(allowed_methods=routes, numbers=GOOD, switches={})
        assert [p.field for p in problems(form)] == ["allowed_methods"]


@pytest.mark.parametrize(
    ("factors", "words"),
    [((), "Allow at least one second factor"), (("sms",), "Choose second factors from the list")],
)
def test_the_second_factors_need_one_known_factor_at_least(
    factors: tuple[str, ...], words: str
) -> None:
    form = SettingsForm(allowed_methods=("email",), numbers=GOOD, switches={},
                        second_factors=factors)  # fmt: skip
    found = problems(form)
    assert [p.field for p in found] == ["second_factors"]
    assert words in found[0].message


def test_second_factors_left_out_are_no_problem() -> None:
    assert problems(_form()) == []
