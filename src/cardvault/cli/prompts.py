"""What the CLI asks at a terminal. A refused answer is asked again, and the operator is told
why (the same rule the service applies, so nothing is sent that it would refuse); after a few
refusals the command stops with that reason and nothing changed.

Prompts and reasons go to stderr (hidden ones to the terminal), so ``--json`` output on
stdout stays parseable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import typer

from cardvault.cli.context import read_secret
from cardvault.errors import InvalidInput
from cardvault.services.cards import enrolment

T = TypeVar("T")
MAX_TRIES = 3


def ask(prompt: str, check: Callable[[str], T], *, hidden: bool = False) -> T:
    """Ask until ``check`` accepts what was typed: it returns what to keep, or raises
    InvalidInput saying what is wrong."""
    problem: InvalidInput | None = None
    for _ in range(MAX_TRIES):
        typed = read_secret(prompt, from_stdin=False) if hidden else _typed(prompt)
        try:
            return check(typed)
        except InvalidInput as exc:
            problem = exc
            _again(exc.diagnostics())
    assert problem is not None
    raise problem


def new_secret(prompt: str, *, from_stdin: bool, check: Callable[[str], None]) -> str:
    """A secret to set (a passcode), checked before anything is done with it; at a terminal
    it is typed twice."""
    if from_stdin:
        value = read_secret(prompt, from_stdin=True)
        check(value)
        return value
    for _ in range(MAX_TRIES):
        value = ask(prompt, _accepting(check), hidden=True)
        if read_secret(f"{prompt} (again)", from_stdin=False) == value:
            return value
        _again(f"The two {prompt.lower()}s are different.")
    raise InvalidInput(f"The two {prompt.lower()}s were different {MAX_TRIES} times.")


def security_questions(offered: Sequence[str], passcode: str) -> list[dict[str, str]]:
    """Three questions, each chosen by its number in ``offered`` or written, with answers."""
    typer.echo(
        "Choose three security questions: type the number of one of these, or write your own."
        if offered
        else "Write three security questions.",
        err=True,
    )
    for number, question in enumerate(offered, start=1):
        typer.echo(f"  {number}. {question}", err=True)
    chosen: list[dict[str, str]] = []
    for number in (1, 2, 3):
        questions = [c["question"] for c in chosen]
        answers = [c["answer"] for c in chosen]
        question = ask(f"Security question {number}", _question(number, offered, questions))
        answer = ask(f"Answer {number}", _answer(number, answers, passcode), hidden=True)
        chosen.append({"question": question, "answer": answer})
    return chosen


def _question(number: int, offered: Sequence[str], earlier: list[str]) -> Callable[[str], str]:
    def check(typed: str) -> str:
        text = typed.strip()
        if not text.isdigit():
            enrolment.check_question(number, text, earlier)
            return text
        if not 1 <= int(text) <= len(offered):
            raise InvalidInput(
                f"There is no question {text}: type a number from 1 to {len(offered)}, "
                "or write your own question."
            )
        chosen = offered[int(text) - 1]
        enrolment.check_question(number, chosen, earlier)
        typer.echo(f"  {chosen}", err=True)
        return chosen

    return check


def _answer(number: int, earlier: list[str], passcode: str) -> Callable[[str], str]:
    def check(typed: str) -> str:
        enrolment.check_answer(number, typed, earlier, passcode)
        return typed

    return check


def _accepting(check: Callable[[str], None]) -> Callable[[str], str]:
    def accept(typed: str) -> str:
        check(typed)
        return typed

    return accept


def _typed(prompt: str) -> str:
    return str(typer.prompt(prompt, err=True))


def _again(reason: str) -> None:
    typer.secho(f"{reason}\nPlease try again.", err=True, fg="yellow")
