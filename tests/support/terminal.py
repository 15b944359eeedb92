"""Run a command in a pseudo-terminal, as a person at a keyboard would.

Prompts that hide what is typed (``getpass``) read from the controlling terminal, and the CLI
only asks questions when stdin is a terminal; a pipe cannot test either. util-linux's
``setsid --ctty`` gives the child a new session whose controlling terminal is the pty, so
``getpass`` and ``isatty`` see a real terminal (and pytest never forks itself). The deadline
only guards against a hung test; nothing here measures time.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: a prompt that has not appeared by then is a failure, not a slow machine
DEADLINE = 120.0


@dataclass
class Terminal:
    """One child process on a pty: ``expect`` what it writes, ``send`` lines to it."""

    process: subprocess.Popen[bytes]
    fd: int
    output: str = ""
    _seen: int = field(default=0, repr=False)
    returncode: int | None = None

    @classmethod
    def spawn(cls, argv: Sequence[str], env: Mapping[str, str]) -> Terminal:
        fd, child = pty.openpty()
        try:
            process = subprocess.Popen(
                ["setsid", "--ctty", *argv],
                stdin=child,
                stdout=child,
                stderr=child,
                env=dict(env),
                close_fds=True,
            )
        finally:
            os.close(child)
        return cls(process=process, fd=fd)

    def expect(self, text: str) -> str:
        """Wait until ``text`` appears after what the last ``expect`` matched; return the
        output in between (including ``text``)."""
        deadline = time.monotonic() + DEADLINE
        while text not in self.output[self._seen :]:
            if not self._read(deadline):
                raise AssertionError(
                    f"{text!r} did not appear; the terminal shows:\n{self.output[self._seen :]}"
                )
        end = self.output.index(text, self._seen) + len(text)
        seen, self._seen = self.output[self._seen : end], end
        return seen

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def wait(self) -> int:
        """Read to the end and return the exit code."""
        deadline = time.monotonic() + DEADLINE
        while self._read(deadline):
            pass
        self.returncode = self.process.wait(timeout=max(deadline - time.monotonic(), 1))
        os.close(self.fd)
        return self.returncode

    def rest(self) -> str:
        """What appeared after the last ``expect``."""
        return self.output[self._seen :]

    def kill(self) -> None:
        if self.returncode is None:
            self.process.kill()
            self.returncode = self.process.wait()
            os.close(self.fd)

    def _read(self, deadline: float) -> bool:
        """Read what is there; False at end of output (or when the deadline passed)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([self.fd], [], [], remaining)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not chunk:
            return False
        self.output += chunk.decode(errors="replace").replace("\r\n", "\n")
        return True
