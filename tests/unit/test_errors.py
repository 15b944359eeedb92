"""errors.py: the root error and its typed data (no HTTP status, no exit code on a class)."""

from __future__ import annotations

import pickle

import pytest

from cardvault.domain.audit_chain import ChainBroken, ChainProblem
from cardvault.errors import CardvaultError, Conflict, InvalidInput, NotFound
from cardvault.services.signin.errors import FactorFailed, SignInFailed, WrongPasscode


def test_an_error_is_its_message_and_says_what_to_do() -> None:
    error = InvalidInput("The name is too long.", remedy="Use at most 80 characters.")
    assert str(error) == error.message == "The name is too long."
    assert error.args == ("The name is too long.",)
    assert error.diagnostics() == "The name is too long.\nUse at most 80 characters."
    assert repr(error) == "InvalidInput('The name is too long.')"


def test_no_error_class_carries_an_http_status_or_an_exit_code() -> None:
    for cls in (CardvaultError, InvalidInput, NotFound, Conflict, WrongPasscode):
        assert not hasattr(cls, "http_status")
        assert not hasattr(cls, "exit_code")


def test_data_is_typed_keyword_attributes() -> None:
    wrong = WrongPasscode(attempts_left=1)
    assert wrong.attempts_left == 1
    assert wrong.message == "The passcode is not right. 1 attempt left before the card locks."
    with pytest.raises(TypeError):
        WrongPasscode(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        InvalidInput("x", colour="red")  # type: ignore[call-arg]


def test_extensions_leave_out_an_optional_attribute_not_given() -> None:
    assert InvalidInput("Bad.").as_dict() == {"code": "invalid_input", "message": "Bad."}
    assert InvalidInput("Bad.", field="name").extensions() == {"field": "name"}


def test_a_required_attribute_is_a_member_even_when_none_and_enums_are_their_values() -> None:
    broken = ChainBroken("Altered.", problem=ChainProblem.ALTERED, seq=4, event_id=None)
    assert broken.extensions() == {"problem": "altered", "seq": 4, "event_id": None}


def test_errors_keep_their_identity() -> None:
    assert SignInFailed() != SignInFailed()  # two refusals are two events, never "equal"
    assert len({SignInFailed(), SignInFailed()}) == 2


def test_a_narrowed_code_is_the_instances_own() -> None:
    failed = FactorFailed("Replayed.", reason="replayed", code="totp_replayed")
    assert (failed.code, FactorFailed.code) == ("totp_replayed", "second_factor_failed")
    assert failed.as_dict() == {
        "code": "totp_replayed",
        "message": "Replayed.",
        "reason": "replayed",
    }


def test_an_error_travels_between_processes() -> None:
    copied = pickle.loads(pickle.dumps(WrongPasscode(attempts_left=2)))  # noqa: S301
    assert (type(copied), copied.attempts_left) == (WrongPasscode, 2)
