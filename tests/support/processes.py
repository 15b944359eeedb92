"""Real processes for end-to-end tests: the service, the relying party, the CLIs."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
FAST_KDF = {
    "CARDVAULT_ARGON2_TIME_COST": "1",
    "CARDVAULT_ARGON2_MEMORY_KIB": "64",
    "CARDVAULT_INSECURE_TEST_KDF": "true",
}


def run(
    cmd: str, *args: str, env: dict[str, str], stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN / cmd), *args],
        input=stdin,
        text=True,
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{cmd} {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


@contextmanager
def background(
    cmd: str, *args: str, env: dict[str, str], health: str, verify: str | bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a long-running command and wait until ``health`` answers; stop it by PID."""
    proc = subprocess.Popen(
        [str(BIN / cmd), *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(proc, health, verify)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _wait(proc: subprocess.Popen[bytes], url: str, ca_file: str | bool) -> None:
    verify = ssl.create_default_context(cafile=ca_file) if isinstance(ca_file, str) else ca_file
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"process exited early ({proc.returncode}):\n{err}")
        try:
            if httpx.get(url, verify=verify, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in time")
