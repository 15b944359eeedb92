"""Drive the real ``cardvault`` console script in a subprocess, as an operator would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardvault.keystore.local import default_runtime_dir

#: cheap Argon2 so that a CLI test spends its time on what it tests
CHEAP_ARGON2 = {
    "CARDVAULT_ARGON2_TIME_COST": "1",
    "CARDVAULT_ARGON2_MEMORY_KIB": "64",
    "CARDVAULT_INSECURE_TEST_KDF": "true",
}
#: `cardvault serve` under test: many sign-ins from one address (see tests/conftest.py)
NO_RATE_LIMITS = {"CARDVAULT_RATE_LIMITS_ENABLED": "false"}


def cardvault_script() -> str:
    """The installed console script next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "cardvault"
    found = str(beside) if beside.exists() else shutil.which("cardvault")
    assert found, "the cardvault console script is not installed (pip install -e .)"
    return found


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error(self) -> dict[str, Any]:
        """The ``{"error": {...}}`` a ``--json`` command prints on stderr when it fails."""
        data = json.loads(self.stderr[self.stderr.index("{") :])
        assert isinstance(data, dict)
        error = data["error"]
        assert isinstance(error, dict)
        return error

    def ok(self) -> Result:
        assert self.returncode == 0, f"{self.args} failed ({self.returncode}):\n{self.stderr}"
        return self


@dataclass(frozen=True)
class Cli:
    """One data directory and database, and the environment the command runs in."""

    data_dir: Path
    database_url: str
    extra_env: tuple[tuple[str, str], ...] = ()

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARDVAULT_")}
        env.update(CHEAP_ARGON2)
        env.update(NO_RATE_LIMITS)
        env["CARDVAULT_DATABASE_URL"] = self.database_url
        env.update(dict(self.extra_env))
        env.update(extra)
        return env

    def argv(self, *args: str, json_output: bool = True) -> list[str]:
        root = [cardvault_script(), "--data-dir", str(self.data_dir)]
        return root + (["--json"] if json_output else []) + list(args)

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        json_output: bool = True,
        timeout: float = 120,
        **env: str,
    ) -> Result:
        done = subprocess.run(
            self.argv(*args, json_output=json_output),
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=self.env(**env),
            timeout=timeout,
            check=False,
        )
        return Result(tuple(args), done.returncode, done.stdout, done.stderr)

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(**env),
        )

    def forget_unsealed_key(self) -> None:
        """Remove what ``cardvault unseal`` left in RAM-backed storage for this data dir."""
        shutil.rmtree(default_runtime_dir(self.data_dir), ignore_errors=True)
