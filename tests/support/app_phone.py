"""The project's own authenticator app (its client code), paired with a live service over
HTTP and run in a thread, as the phone in browser tests that approve or deny a push."""

from __future__ import annotations

import queue
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpx

from cardvault.clients.authenticator import core
from cardvault.clients.authenticator.api import DeviceApi
from cardvault.clients.authenticator.state import DeviceState
from cardvault.crypto.device import DeviceKey
from cardvault.services.devices import pairing
from cardvault.services.system.runtime import Actor, Runtime
from tests.support import factories as f


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


@contextmanager
def paired(
    url: str,
    rt: Runtime,
    operator: Actor,
    *,
    serial: str,
    org_code: str,
    name: str,
    verify: ssl.SSLContext | bool = True,
) -> Iterator[Phone]:
    """A phone paired with the card at ``url`` as the app pairs (the holder types the
    passcode), its client open until the block ends."""
    inv = pairing.create_pairing(rt, operator, serial=serial, org_code=org_code)
    fields = {k: v[0] for k, v in parse_qs(urlsplit(inv.uri).query).items()}
    with httpx.Client(base_url=url, timeout=30, verify=verify) as client:
        state = core.pair(
            DeviceApi(client),
            fields,
            core.PairInput(uri=inv.uri, passcode=f.STRONG_PASSCODE, name=name, platform="test"),
        )
    key = DeviceKey.from_pem(state.device_key_pem.encode())
    with httpx.Client(base_url=url, timeout=30, verify=verify) as client:
        yield Phone(DeviceApi(client, device_id=state.device_id, key=key, kid=state.kid), state)
