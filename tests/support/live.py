"""A running cardvault (uvicorn over TLS on a free port, in a thread) and the client programs
(``cardvault-authenticator``, ``cardvault-agent``) run as separate processes against it."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from cardvault.config import Settings
from cardvault.crypto.tls import development_certificate
from cardvault.services.system.runtime import Runtime, open_runtime
from cardvault.web.app import create_app
from tests.support.live_server import free_port


def tls_files(directory: Path) -> tuple[Path, Path]:
    cert, key = development_certificate(["localhost"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cert.pem").write_bytes(cert)
    (directory / "key.pem").write_bytes(key)
    return directory / "cert.pem", directory / "key.pem"


def loopback_tls(cert: Path) -> ssl.SSLContext:
    """Trust ``cert`` for a server reached at 127.0.0.1 (the certificate names localhost)."""
    tls = ssl.create_default_context(cafile=str(cert))
    tls.check_hostname = False
    return tls


def wait_ready(url: str, tls: ssl.SSLContext, process: subprocess.Popen[str] | None = None) -> None:
    """Until ``url``'s /readyz answers 200 (a loaded machine starts a server slowly); fails
    at once, with its stderr, if ``process`` ends meanwhile."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server ended: {process.communicate()[1]}")
        try:
            if httpx.get(f"{url}/readyz", verify=tls, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server at {url} did not become ready")


@dataclass(frozen=True)
class Instance:
    rt: Runtime
    url: str


@contextmanager
def serve(settings: Settings, cert: Path, key: Path, **overrides: object) -> Iterator[Instance]:
    """One service instance on its own runtime (own channel), until the block ends."""
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    own = settings.model_copy(update={"public_url": url, **overrides})
    rt = open_runtime(own, migrate=True)
    config = uvicorn.Config(
        create_app(rt),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the service did not start"
        assert time.monotonic() < deadline, "the service did not start in time"
        time.sleep(0.02)
    try:
        yield Instance(rt=rt, url=url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        rt.close()


def script(name: str) -> str:
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed (pip install -e .)"
    return str(path)


@dataclass(frozen=True)
class Program:
    """A console script with its own state directory and the service's CA."""

    name: str
    ca_file: Path
    state_dir: Path
    extra: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        return [
            script(self.name),
            "--ca-file",
            str(self.ca_file),
            "--state-dir",
            str(self.state_dir),
        ]

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("CARDVAULT_")}

    def run(
        self, *args: str, stdin: str = "", timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.argv(), *self.extra, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )

    def start(self, *args: str, stdin: str = "") -> Running:
        proc = subprocess.Popen(
            [*self.argv(), *self.extra, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
        )
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
        return Running(proc)


class Running:
    """A started program whose output is collected as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(proc.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(stream: object, sink: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line)

    def wait_for(self, needle: str, timeout: float = 20) -> str:
        """The first stderr line containing ``needle`` (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.err):
                if needle in line:
                    return line
            if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                break
            time.sleep(0.02)
        raise AssertionError(f"{needle!r} not seen; stderr: {''.join(self.err)}")

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) once the program has ended."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"did not finish: {''.join(self.out)}{''.join(self.err)}"
            ) from None
        self._close()
        return code, "".join(self.out), "".join(self.err)

    def _close(self) -> None:
        for t in self._threads:
            t.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()
