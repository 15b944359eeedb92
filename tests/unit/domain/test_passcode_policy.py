"""The strong-passcode rule: length, personal information, zxcvbn, and the messages people see."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardvault.domain.passcode_policy import (
    PasscodePolicy,
    PasscodePolicyInvalid,
    WeakPasscode,
    check_passcode,
)
from cardvault.errors import InvalidInput

DEFAULT = PasscodePolicy()
ALICE = ("Alice", "Fairweather", "alice.fairweather@example.org", "123456789012")
STRONG = "velvet-otter-quarry-lamp"


def refusal(
    passcode: str, *, policy: PasscodePolicy = DEFAULT, personal: tuple[str, ...] = ALICE
) -> WeakPasscode:
    with pytest.raises(WeakPasscode) as caught:
        check_passcode(passcode, policy=policy, personal=personal)
    return caught.value


# -- policy ------------------------------------------------------------------------------


def test_default_policy_is_the_design_one() -> None:
    assert DEFAULT.as_dict() == {"min_length": 8, "max_length": 128, "min_score": 3}


def test_policy_round_trips_through_a_dict() -> None:
    policy = PasscodePolicy(min_length=12, max_length=200, min_score=4)
    assert PasscodePolicy.from_dict(policy.as_dict()) == policy


def test_policy_from_an_empty_dict_takes_the_defaults() -> None:
    assert PasscodePolicy.from_dict({}) == DEFAULT


@pytest.mark.parametrize(
    ("settings_", "complaint"),
    [
        ({"min_length": 7}, "cannot be lowered"),
        ({"max_length": 63}, "between 64 and 256"),
        ({"min_length": 100, "max_length": 90}, "between 100 and 256"),
        ({"max_length": 257}, "between 64 and 256"),
        ({"min_score": 1}, "between 2 and 4"),
        ({"min_score": 5}, "between 2 and 4"),
        ({"min_length": "12"}, "whole number"),
        ({"min_score": True}, "whole number"),
        ({"min_length": 12.0}, "whole number"),
        ({"min_lenght": 12}, "unknown settings: min_lenght"),
    ],
)
def test_policy_outside_the_design_is_refused(settings_: dict[str, object], complaint: str) -> None:
    with pytest.raises(PasscodePolicyInvalid) as caught:
        PasscodePolicy.from_dict(settings_)
    assert complaint in caught.value.message
    assert caught.value.code == "passcode_policy_invalid"
    assert isinstance(caught.value, InvalidInput)


# -- length ------------------------------------------------------------------------------


@pytest.mark.parametrize("passcode", ["", " ", "        "])
def test_empty_passcode_is_refused(passcode: str) -> None:
    error = refusal(passcode)
    assert error.reason == "empty"
    assert error.code == "weak_passcode"


def test_short_passcode_is_refused_with_the_minimum_in_the_message() -> None:
    error = refusal("x7#Qv!z")
    assert error.reason == "too_short"
    assert error.message == "Your passcode must be at least 8 characters long."


def test_organisation_can_raise_the_minimum_length() -> None:
    error = refusal("quarry-lamp-x", policy=PasscodePolicy(min_length=14))
    assert error.message == "Your passcode must be at least 14 characters long."


def test_length_counts_characters_not_bytes() -> None:
    check_passcode("ñøçå€ŧ¥ß", policy=PasscodePolicy(min_score=2))


def test_long_passcode_is_refused_above_the_maximum() -> None:
    error = refusal("w" * 129)
    assert error.reason == "too_long"
    assert error.message == "Your passcode must be at most 128 characters long."


def test_passcodes_up_to_the_maximum_are_accepted() -> None:
    long_passphrase = ("velvet otter quarry lamp " * 6)[:128]
    check_passcode(long_passphrase, policy=DEFAULT, personal=ALICE)
    check_passcode("plinth-marzipan-ochre-" + "z" * 42, policy=DEFAULT)  # 64 characters


def test_strong_passcode_without_composition_rules_is_accepted() -> None:
    check_passcode(STRONG, policy=DEFAULT, personal=ALICE)
    check_passcode("purple monkey dishwasher", policy=DEFAULT, personal=ALICE)


# -- personal information ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("passcode", "what"),
    [
        ("Fairweather!Lamp42", "name"),
        ("FAIR WEATHER quarry", "name"),
        ("quarry-alice-otter", "name"),
        ("alice.fairweather2024", "email address"),
        ("quarry-alicefair-lamp", "name"),
        ("lamp alice_fairweather@example.org", "email address"),
        ("1234-5678-9012-otter", "user ID"),
        ("otter 123456789012", "user ID"),
    ],
)
def test_passcode_containing_personal_information_is_refused(passcode: str, what: str) -> None:
    error = refusal(passcode)
    assert error.reason == "contains_personal_info"
    assert error.message.startswith(f"Your passcode contains your {what}.")


def test_email_local_part_is_personal_information() -> None:
    error = refusal("quarry-ali.f99-lamp", personal=("ali.f99@example.org",))
    assert error.reason == "contains_personal_info"
    assert "email address" in error.message


def test_very_short_names_do_not_refuse_ordinary_words() -> None:
    check_passcode("singing-otter-quarry", policy=DEFAULT, personal=("Ng", "Li"))


def test_personal_words_count_against_the_score_too() -> None:
    # "Wolstenholme" is not in zxcvbn's dictionaries; as a user input it is cheap to guess,
    # even in the l33t spelling that the plain containment check does not see.
    check_passcode("W0lstenh0lme!7", policy=DEFAULT)
    error = refusal("W0lstenh0lme!7", personal=("Jo Wolstenholme",))
    assert error.reason == "too_guessable"


# -- zxcvbn ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "passcode", ["password", "Password1", "12345678", "qwerty123456", "iloveyou12"]
)
def test_common_passcode_is_refused_as_too_common(passcode: str) -> None:
    error = refusal(passcode)
    assert error.reason == "too_common"
    assert error.message == "This passcode is too common: it is on lists attackers try first."
    assert error.remedy
    assert error.remedy.startswith("Add another word or two. Uncommon words are better.")


@pytest.mark.parametrize("passcode", ["aaaaaaaaaaaa", "abcdefgh1", "Tr0ub4dour&3", "correcthorse"])
def test_guessable_passcode_is_refused_as_too_guessable(passcode: str) -> None:
    error = refusal(passcode)
    assert error.reason == "too_guessable"
    assert error.message == "This passcode would be too easy to guess."
    assert error.remedy


def test_zxcvbn_advice_is_in_the_diagnostics() -> None:
    error = refusal("abcdefgh1")
    assert 'Sequences like "abc"' in error.diagnostics()
    assert error.as_dict()["reason"] == "too_guessable"


def test_minimum_score_is_configurable() -> None:
    check_passcode("correcthorse", policy=PasscodePolicy(min_score=2))
    with pytest.raises(WeakPasscode):
        check_passcode("correcthorse", policy=PasscodePolicy(min_score=3))


# -- what the messages never do ----------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(body=st.text(alphabet=st.characters(codec="utf-8"), max_size=140))
def test_refusal_never_repeats_the_passcode(body: str) -> None:
    # The snowman never appears in a message, so finding the passcode there means it leaked.
    passcode = "\u2603" + body
    error: WeakPasscode | None = None
    try:
        check_passcode(passcode, policy=DEFAULT, personal=ALICE)
    except WeakPasscode as exc:
        error = exc
    if error is not None:
        assert error.reason in WeakPasscode.REASONS
        assert "\u2603" not in error.diagnostics()
        assert "\u2603" not in str(error.as_dict())
