"""The security questions of an enrolment: three different questions with three different
answers, none of them the passcode; each refusal names the field a form marks."""

from __future__ import annotations

import pytest

from cardvault.errors import InvalidInput
from cardvault.services.cards.enrolment import (
    SecurityAnswer,
    check_answer,
    check_question,
    check_questions,
)

GOOD = (
    SecurityAnswer(question="First school?", answer="St Mary's"),
    SecurityAnswer(question="Favourite dish?", answer="Paella"),
    SecurityAnswer(question="First pet?", answer="Rex the dog"),
)


def _field(error: pytest.ExceptionInfo[InvalidInput]) -> object:
    return error.value.as_dict().get("field")


def test_three_different_questions_and_answers_pass() -> None:
    check_questions(GOOD, passcode="correct horse battery staple")


@pytest.mark.parametrize("count", [0, 2, 4])
def test_exactly_three_questions(count: int) -> None:
    answers = (GOOD * 2)[:count]
    with pytest.raises(InvalidInput, match="exactly three"):
        check_questions(answers)


def test_a_question_repeated_in_other_case_and_spacing_is_the_same_question() -> None:
    with pytest.raises(InvalidInput, match="same as another one") as refused:
        check_question(2, "  first   SCHOOL? ", ["First school?"])
    assert _field(refused) == "question2"


def test_an_empty_or_too_long_question_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Choose or write security question 1"):
        check_question(1, "   ", [])
    with pytest.raises(InvalidInput, match="at most"):
        check_question(3, "why " * 100, [])


def test_answers_are_compared_normalised_and_never_equal_the_passcode() -> None:
    with pytest.raises(InvalidInput, match="same as another answer") as refused:
        check_answer(3, "  PAELLA ", ["paella"])
    assert _field(refused) == "answer3"
    with pytest.raises(InvalidInput, match="must not be your passcode"):
        check_answer(1, "Correct Horse", [], passcode="correct  horse")
    with pytest.raises(InvalidInput, match="Enter an answer to security question 2"):
        check_answer(2, " \t", [])
