"""The project's own authenticator app (its client code), paired with a live service over
HTTP and run in a thread, as the phone in browser tests that approve or deny a push."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

from cardvault.clients.authenticator import core
from cardvault.clients.authenticator.api import DeviceApi
from cardvault.clients.authenticator.state import DeviceState


@dataclass
class Phone:
    """The reference authenticator app's own code, paired with the service over HTTP, in a
    thread: it waits for the challenge and answers with what the holder chose."""

    api: DeviceApi
    state: DeviceState
    said: list[str] = field(default_factory=list)
    choices: queue.Queue[core.Choice] = field(default_factory=queue.Queue)
    thread: threading.Thread | None = None

    def listen(self) -> None:
        def run() -> None:
            choose = lambda _challenge: self.choices.get(timeout=60)  # noqa: E731
            core.listen(self.api, choose, self.said.append, once=True)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        self.wait_until_said("Connected")

    def wait_until_said(self, needle: str, timeout: float = 20) -> str:
        deadline = threading.Event()
        for _ in range(int(timeout / 0.05)):
            found = [s for s in self.said if needle in s]
            if found:
                return found[0]
            deadline.wait(0.05)
        raise AssertionError(f"{needle!r} not said; said: {self.said}")

    def finish(self) -> None:
        assert self.thread is not None
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()
