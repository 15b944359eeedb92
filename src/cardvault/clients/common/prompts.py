"""What the command-line clients ask of the person at the keyboard, and how they tell them.

Prompts never echo a secret and refuse to wait on a pipe that will never answer: without a
terminal, a passcode comes from stdin only when ``--passcode-stdin`` says so.
"""

from __future__ import annotations

import getpass
import sys

import typer

from cardvault.errors import InvalidInput

__all__ = ["ask", "passcode", "tell"]


def passcode(from_stdin: bool) -> str:
    """The passcode: one line of stdin with ``--passcode-stdin``, else typed at a terminal."""
    if from_stdin:
        value = sys.stdin.readline(4096).rstrip("\r\n")
    elif sys.stdin.isatty():
        value = getpass.getpass("Passcode: ")
    else:
        raise InvalidInput("Cannot prompt for the passcode: use --passcode-stdin.")
    if not value:
        raise InvalidInput("No passcode given.")
    return value


def ask(prompt: str, *, option: str) -> str:
    """A short answer: typed at a terminal, or the next line of stdin (after the passcode)."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline(64).strip()
        if not line:
            raise InvalidInput(f"{prompt} is needed: pass it with {option}.")
        return line
    return str(typer.prompt(prompt))


def tell(message: str) -> None:
    """Progress and instructions go to stderr, so stdout stays the command's answer."""
    typer.echo(message, err=True)
