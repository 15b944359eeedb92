"""Every ``cardvault``, ``cardvault-agent`` and ``cardvault-authenticator`` command line in the
README's and the docs' shell blocks names a command that exists, with options it takes, in
the order it takes them (``--json`` before the command).

Each line is parsed by the program itself with ``--help`` appended: the parser rejects an
unknown command or option before the help is printed. Placeholders (``<serial>``) and shell
variables are plain arguments to it; nothing runs (the test checks that help was printed,
in a scratch directory).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cardvault.cli.main import app as cardvault_app
from cardvault.clients.agent.cli import app as agent_app
from cardvault.clients.authenticator.cli import app as authenticator_app
from cardvault.crypto.tls import development_certificate

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS: dict[str, typer.Typer] = {
    "cardvault": cardvault_app,
    "cardvault-agent": agent_app,
    "cardvault-authenticator": authenticator_app,
}
#: after these a new command starts
COMMAND_START = {"do", "then", "else", "time", "!", "{"}
PLACEHOLDER = re.compile(r"<[A-Za-z0-9][^<>\n]*>")  # <serial>, <64 hex digits>
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _shell_lines(text: str) -> Iterator[list[str]]:
    """The tokens of each command line of the shell blocks (a quote may span lines)."""
    for block in re.findall(r"^```(?:sh|bash|console)\n(.*?)^```", text, re.M | re.S):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            pending += line
            try:
                yield _tokens(pending)
            except ValueError:  # no closing quotation yet
                pending += "\n"
                continue
            pending = ""
        assert not pending, f"an unclosed quote in a shell block: {pending!r}"


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(PLACEHOLDER.sub("PLACEHOLDER", line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _is_operator(token: str) -> bool:
    return bool(token) and all(ch in "();<>|&" for ch in token)


def _invocations(tokens: list[str]) -> Iterator[tuple[str, list[str]]]:
    """The programs' command lines among the commands of one shell line."""
    start = True
    for i, token in enumerate(tokens):
        if _is_operator(token) or token in COMMAND_START:
            start = True
        elif start and ASSIGNMENT.match(token):
            continue  # VAR=value before a command
        elif start:
            start = False
            if token.rsplit("/", 1)[-1] in PROGRAMS:
                args = []
                for arg in tokens[i + 1 :]:
                    if _is_operator(arg):
                        break
                    args.append(arg)
                yield token.rsplit("/", 1)[-1], args


def _documented() -> list[tuple[str, str, list[str]]]:
    found = []
    for doc in DOCUMENTS:
        for tokens in _shell_lines(doc.read_text(encoding="utf-8")):
            for program, args in _invocations(tokens):
                found.append((str(doc.relative_to(ROOT)), program, args))
    return found


DOCUMENTED = _documented()


def test_the_readme_tour_is_among_the_lines_checked() -> None:
    readme = [args for doc, _, args in DOCUMENTED if doc == "README.md"]
    assert ["--json", "card", "show", "PLACEHOLDER"] in readme
    assert len(readme) >= 15


@pytest.mark.parametrize(
    ("doc", "program", "args"),
    DOCUMENTED,
    ids=[f"{d}: {p} {' '.join(a)}"[:120] for d, p, a in DOCUMENTED],
)
def test_documented_command_line_parses(
    doc: str, program: str, args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the agent checks --ca-file at once: give the documented path a certificate
    monkeypatch.chdir(tmp_path)
    for i, arg in enumerate(args[:-1]):
        if arg == "--ca-file" and not Path(args[i + 1]).is_absolute():
            cert = tmp_path / args[i + 1]
            cert.parent.mkdir(parents=True, exist_ok=True)
            cert.write_bytes(development_certificate(["localhost"])[0])
    scratch = {"CARDVAULT_DATA_DIR": str(tmp_path / "data"), "CARDVAULT_AGENT_STATE_DIR": "st"}
    result = CliRunner().invoke(PROGRAMS[program], [*args, "--help"], env=scratch)
    assert result.exit_code == 0, f"{doc}: {program} {shlex.join(args)}\n{result.output}"
    assert "Usage:" in result.output  # the help, not the command
