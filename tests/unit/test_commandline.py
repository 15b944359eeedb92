"""What the three command-line programs share: clean help, --version, exit codes, JSON errors.

The help of every command of ``cardvault``, ``cardvault-agent`` and
``cardvault-authenticator`` is rendered in-process (milliseconds each); the real console
scripts are run in tests/integration/cli and tests/e2e.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import typer
import typer.main
from typer.testing import CliRunner

import cardvault
from cardvault.cli.main import app as cardvault_app
from cardvault.clients.agent.cli import app as agent_app
from cardvault.clients.authenticator.cli import app as authenticator_app
from cardvault.commandline import EXIT_CODES, exit_code_of, exit_codes_epilog
from cardvault.errors import CardvaultError

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = {
    "cardvault": cardvault_app,
    "cardvault-agent": agent_app,
    "cardvault-authenticator": authenticator_app,
}
#: a command each program has
SOME_COMMAND = {
    "cardvault": ["org", "list"],
    "cardvault-agent": ["status"],
    "cardvault-authenticator": ["status"],
}
#: help text that was once true and is not any more
OUTDATED = ("and later the web pages", "<bool>", "whitelisting")


def _paths(group: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, command in getattr(group, "commands", {}).items():
        yield from _paths(command, (*prefix, name))


def _help(app: typer.Typer, path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, f"{' '.join(path)} --help: {result.output}"
    return result.output


@pytest.mark.parametrize("program", PROGRAMS)
def test_no_help_shows_a_type_next_to_a_flag_or_outdated_text(program: str) -> None:
    app = PROGRAMS[program]
    paths = list(_paths(typer.main.get_command(app)))
    assert len(paths) > 5
    for path in paths:
        text = _help(app, path)
        for phrase in OUTDATED:
            assert phrase not in text, f"{program} {' '.join(path)} --help shows {phrase!r}"


def test_options_that_take_a_value_still_show_its_type() -> None:
    text = _help(cardvault_app, ("card", "issue"))
    assert re.search(r"--org\s+<str>", text)
    assert re.search(r"--passcode-stdin\s+Read", text)  # a flag: straight to its help


def _error_classes() -> Iterator[type[CardvaultError]]:
    for module in pkgutil.walk_packages(cardvault.__path__, "cardvault."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    todo: list[type[CardvaultError]] = [CardvaultError]
    while todo:
        cls = todo.pop()
        yield cls
        todo += cls.__subclasses__()


def test_every_error_class_exits_with_a_documented_code() -> None:
    classes = list(_error_classes())
    assert len(classes) > 100
    undocumented = [
        f"{c.__module__}.{c.__name__}" for c in classes if exit_code_of(c) not in EXIT_CODES
    ]
    assert not undocumented, f"exit codes missing from commandline.EXIT_CODES: {undocumented}"
    used = {exit_code_of(c) for c in classes}
    stale = set(EXIT_CODES) - used - {0, 130}
    assert not stale, f"commandline.EXIT_CODES documents codes no error has: {stale}"


@pytest.mark.parametrize("program", PROGRAMS)
def test_help_ends_with_the_exit_codes(program: str) -> None:
    text = _help(PROGRAMS[program], ())
    assert "Exit codes:" in text
    for line in exit_codes_epilog().splitlines()[2:]:
        assert line.strip() in text


def test_operator_guide_lists_the_exit_codes_as_the_errors_define_them() -> None:
    guide = (ROOT / "docs" / "operator" / "guide.md").read_text(encoding="utf-8")
    section = guide.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `?(\d+)`? \| (.+?) \|$", section, flags=re.MULTILINE)
    assert [(int(code), meaning) for code, meaning in rows] == list(EXIT_CODES.items())


@pytest.mark.parametrize("program", PROGRAMS)
def test_version_is_the_installed_one(program: str) -> None:
    result = CliRunner().invoke(PROGRAMS[program], ["--version"])
    assert result.exit_code == 0
    assert result.output == f"{program} {metadata.version('cardvault')}\n"
    assert cardvault.__version__ == metadata.version("cardvault")


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["extra-argument"], "unexpected extra argument"),
        ([], None),
    ],
)
def test_usage_errors_are_json_with_json(
    program: str, argv: list[str], message: str | None
) -> None:
    if message is None:  # an unknown command instead
        argv, message = ["--json", "no-such-command"], "No such command 'no-such-command'"
    else:
        argv = ["--json", *SOME_COMMAND[program], *argv]
    result = CliRunner().invoke(PROGRAMS[program], argv)
    assert result.exit_code == 2
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "usage"
    assert message in error["message"]
    assert "--help" in error["remedy"]
    assert result.stdout == ""


def test_usage_errors_are_text_without_json() -> None:
    result = CliRunner().invoke(agent_app, ["status", "--bogus"])
    assert result.exit_code == 2
    assert "No such option: --bogus" in result.stderr
    assert "{" not in result.stderr
