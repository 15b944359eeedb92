"""The reference topology (``scripts/topology``) for the fault tier and the load benchmark:
started in a folder of its own on ports of its own, driven through the script's fault
commands, and reached over HTTPS through HAProxy like any client would."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from sqlalchemy import text

from cardvault.clients.agent import core
from cardvault.clients.agent.state import AgentState
from cardvault.clients.authenticator.core import Choice
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.config import Settings
from cardvault.services.system.runtime import Runtime, open_runtime
from tests.support.app_phone import Phone
from tests.support.auth import HolderFixture
from tests.support.databases import TEST_ARGON2
from tests.support.factories import STRONG_PASSCODE

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "topology"
T = TypeVar("T")
#: the request being sent by this thread: every attempt carries its own X-Request-ID, so the
#: audit trail (which records it) can be matched attempt by attempt
_REQUEST_ID = threading.local()


@dataclass(frozen=True)
class Topology:
    state: Path
    port: int
    info: dict[str, object]

    def script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``scripts/topology ARGS`` on this topology."""
        env = {
            **os.environ,
            "CARDVAULT_TOPOLOGY_DIR": str(self.state),
            "CARDVAULT_TOPOLOGY_PORT": str(self.port),
        }
        out = subprocess.run([str(SCRIPT), *args], env=env, text=True, capture_output=True)
        if check and out.returncode != 0:
            raise AssertionError(f"scripts/topology {' '.join(args)}: {out.stdout}{out.stderr}")
        return out

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def instance_url(self, n: int) -> str:
        urls = self.info["instances"]
        assert isinstance(urls, list)
        return str(urls[n - 1])

    def runtime(self) -> Runtime:
        """The service's own functions on the topology's database, for seeding."""
        settings = Settings(  # type: ignore[arg-type]
            data_dir=Path(str(self.info["data_dir"])),
            database_url=str(self.info["database_url"]),
            audit_anchor_file=Path(str(self.info["anchor_dir"])) / "anchors.jsonl",
            **TEST_ARGON2,
        )
        return open_runtime(settings)

    def client(self, base_url: str | None = None) -> httpx.Client:
        """An HTTPS client that verifies the topology's certificate and sends this thread's
        request id."""
        return httpx.Client(
            base_url=base_url or self.url,
            verify=self.tls(),
            timeout=30,
            event_hooks={"request": [_stamp_request_id]},
        )

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.info["ca_file"]))

    def ready(self, base_url: str) -> int:
        with httpx.Client(verify=self.tls(), timeout=3) as http:
            try:
                return http.get(f"{base_url}/readyz").status_code
            except httpx.HTTPError:
                return 0

    def scalar(self, sql: str, **params: object) -> object:
        rt = self.runtime()
        try:
            with rt.engine.connect() as conn:
                return conn.execute(text(sql), params).scalar()
        finally:
            rt.engine.dispose()


def _stamp_request_id(request: httpx.Request) -> None:
    request.headers["X-Request-ID"] = getattr(_REQUEST_ID, "value", None) or str(uuid.uuid4())


@contextmanager
def running(port: int, *env: str) -> Iterator[Topology]:
    """A fresh topology (test KDF) for the block; always down and deleted afterwards. Its
    folder is under /var/tmp, which the ``postgres`` user can reach (pytest's is private)."""
    state = Path(tempfile.mkdtemp(prefix="cardvault-topology-", dir="/var/tmp"))
    state.chmod(0o755)
    topo = Topology(state=state, port=port, info={})
    args = [f"--env={item}" for item in env]
    try:
        topo.script("up", "--test-kdf", *args)
        info = json.loads((state / "topology.json").read_text())
        yield Topology(state=state, port=port, info=info)
    finally:
        topo.script("down", "--purge", check=False)


@dataclass
class Attempt:
    """One HTTP attempt of a logical step: its request id and how it ended."""

    request_id: str
    step: str
    outcome: str  # "ok", "refused" (the service answered 4xx), "lost" (no answer, 502/503)
    status: int | None = None
    problem: str | None = None


@dataclass
class Journal:
    """Every attempt a load stream made, shared by its threads."""

    attempts: list[Attempt]
    lock: threading.Lock

    @classmethod
    def new(cls) -> Journal:
        return cls(attempts=[], lock=threading.Lock())

    def ids(self, step: str, outcome: str) -> set[str]:
        with self.lock:
            return {a.request_id for a in self.attempts if a.step == step and a.outcome == outcome}

    def count(self, outcome: str) -> int:
        with self.lock:
            return sum(1 for a in self.attempts if a.outcome == outcome)


RETRYABLE = {502, 503, 504}


def retried(journal: Journal, step: str, call: Callable[[], T], *, tries: int = 6) -> T:
    """A client that retries a step when the load balancer or the service says "try again"
    (no answer, 502/503/504): each attempt is journaled with its own request id."""
    for attempt in range(tries):
        request_id = f"{step}-{uuid.uuid4()}"
        _REQUEST_ID.value = request_id
        try:
            result = call()
        except ServiceError as exc:
            lost = exc.status is None or exc.status in RETRYABLE
            entry = Attempt(
                request_id, step, "lost" if lost else "refused", exc.status, exc.problem
            )
            with journal.lock:
                journal.attempts.append(entry)
            if not lost or attempt == tries - 1:
                raise
            time.sleep(min(0.2 * 2**attempt, 2.0))
            continue
        finally:
            _REQUEST_ID.value = None
        with journal.lock:
            journal.attempts.append(Attempt(request_id, step, "ok", 200))
        return result
    raise AssertionError("unreachable")


def sign_in(api: CardvaultApi, server: str, email: str, passcode: str, code: str) -> AgentState:
    """Passcode plus one-time code, as ``cardvault-agent login`` does it."""
    data = core.LoginInput(identifier_kind="email", identifier=email, passcode=passcode)
    return core.login(api, server, data, totp=code, ask_code=_no_prompt)


def signed_in(journal: Journal, api: CardvaultApi, server: str, h: HolderFixture) -> AgentState:
    """A test holder's sign-in with the right passcode and the current code, retried."""
    return retried(
        journal, "signin", lambda: sign_in(api, server, h.email, STRONG_PASSCODE, h.code())
    )


def push_sign_in(
    topology: Topology, email: str, phone: Phone, notes: list[str], code: Callable[[], str]
) -> AgentState:
    """``cardvault-agent login`` without a code: a push the phone approves with the number
    shown, or, when the agent is told it cannot push, the app's one-time code."""
    data = core.LoginInput(identifier_kind="email", identifier=email, passcode=STRONG_PASSCODE)
    with topology.client() as http:
        return core.login(
            CardvaultApi(http),
            topology.url,
            data,
            totp=None,
            ask_code=lambda _question: code(),
            show_number=lambda n: phone.choices.put(Choice(decision="approve", number=n)),
            note=notes.append,
        )


def wait_for(check: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``check`` held; fails after ``seconds``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.2)
    return time.monotonic() - start


def _no_prompt(_question: str) -> str:
    raise AssertionError("the test gives the code up front")


def signing_stream(
    topology: Topology, journal: Journal, h: HolderFixture, stop: threading.Event
) -> None:
    """Sign in, then sign challenges until told to stop, retrying what the load balancer
    lost."""
    with topology.client() as http:
        api = CardvaultApi(http)
        session = signed_in(journal, api, topology.url, h)
        n = 0
        while not stop.is_set():
            n += 1
            digest = hashlib.sha256(f"{h.email}/{n}".encode()).digest()
            retried(journal, "sign", lambda d=digest: sign(api, session, d))
            time.sleep(0.05)


def in_threads(
    jobs: list[Callable[[], object]],
) -> tuple[list[threading.Thread], list[BaseException]]:
    """Each job in a thread of its own, started; the threads and the errors they raise."""
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            job()
        except BaseException as exc:  # collected and reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    return threads, errors


def sign(api: CardvaultApi, session: AgentState, digest: bytes) -> str:
    """One signature with the card's authentication key; its base64 value."""
    return core.sign(api, session, digest=digest, key="authentication").text("signature")
