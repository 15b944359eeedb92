"""The command lines start without the heavy libraries (issue 16: --help within 0.3 s).

Timing is the benchmark's job (bench/auth.py prints it); this checks the cause: what a
``--help`` imports, and that the lazily listed root help is the whole tree's help."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

#: submodules a library's import executes (a lazily bound library is only a placeholder)
HEAVY = (
    "sqlalchemy.engine",
    "jinja2.environment",
    "httpx._client",
    "joserfc.jwe",
    "fido2.client",
    "segno.encoder",
    "cryptography.x509",
    "ssl",  # the agent's --ca-file needs it when a command runs, not for --help
    "typer.rich_utils",  # Rich's help imports Markdown and Traceback renderers: plain help
    "rich.console",
)
#: what the agent's own commands need when they run (connector, login), not for --help
AGENT_HEAVY = (
    "hmac",
    "_hashlib",
    "logging",
    "socket",
    "cardvault.clients.connector.vpcd",
)


def _imports_after_help(module: str, prog: str, heavy: tuple[str, ...] = HEAVY) -> set[str]:
    """Which of ``heavy`` ``--help`` executed (a lazy module's placeholder does not count)."""
    code = (
        "import sys\n"
        f"sys.argv = [{prog!r}, '--help']\n"
        f"from {module} import run\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        f"loaded = [m for m in {heavy!r} if m in sys.modules]\n"
        "print(' '.join(m for m in loaded if type(sys.modules[m]).__name__ != '_LazyModule'),"
        " file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(done.stderr.split())


def test_cardvault_help_imports_no_service_library() -> None:
    assert _imports_after_help("cardvault.cli.main", "cardvault") == set()


def test_agent_help_imports_no_network_or_crypto_library() -> None:
    agent = "cardvault.clients.agent.cli"
    assert _imports_after_help(agent, "cardvault-agent", HEAVY + AGENT_HEAVY) == set()


def test_the_lazy_root_help_is_the_whole_trees_help() -> None:
    from cardvault.cli import main

    lazy = main._new_root(main._ListingRoot)  # what run() starts with
    runner = CliRunner()
    listed = runner.invoke(lazy, ["--help"], prog_name="cardvault")
    whole = runner.invoke(main.app, ["--help"], prog_name="cardvault")
    assert listed.exit_code == whole.exit_code == 0
    assert listed.output == whole.output
    assert "serve" in listed.output


def test_each_lazily_loaded_command_is_the_whole_trees() -> None:
    from cardvault.cli import main

    runner = CliRunner()
    for name in main.COMMANDS:
        lazy = main._new_root(main._ListingRoot)
        listed = runner.invoke(lazy, [name, "--help"], prog_name="cardvault")
        whole = runner.invoke(main.app, [name, "--help"], prog_name="cardvault")
        assert listed.exit_code == whole.exit_code == 0, name
        assert listed.output == whole.output, name
