"""`cardvault serve --workers 2`: two processes on one port, and what must hold across them.

Every request goes on a connection of its own, so the kernel hands them to either worker;
the JSON log says which (``pid``) and the test checks that both answered. Across the two:
the passcode lockout evaluates exactly three wrong passcodes sent at once, a one-time code
is used once, the rate-limit counters are one (in Redis), and the audit chain that both
wrote at the same time verifies against the anchor both appended to.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support.cli import Cli
from tests.support.factories import STRONG_PASSCODE
from tests.support.live import loopback_tls, tls_files, wait_ready
from tests.support.live_server import free_port
from tests.support.redis_server import REDIS_URL, fresh_prefix, redis_or_skip

from cardvault.clients.agent import core
from cardvault.clients.agent.state import AgentState
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.config import Settings
from cardvault.domain.vocabulary import CardStatus
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Card
from cardvault.web.server import _worker_environment

WORKERS = 2
#: the certificate-status rate under test (per address, both workers together)
STATUS_RATE = 6


@dataclass(frozen=True)
class Served:
    url: str
    tls: ssl.SSLContext
    process: subprocess.Popen[str]

    def client(self) -> httpx.Client:
        """A new connection: the kernel gives it to whichever worker accepts first."""
        return httpx.Client(base_url=self.url, verify=self.tls, timeout=60)


@pytest.fixture
def served(cli: Cli, rt: Runtime, operator: Actor) -> Iterator[Served]:
    redis_or_skip()
    a.local_network(rt, operator)  # the ingress gate admits loopback to the API
    cert, _key = tls_files(cli.data_dir / "tls")
    tls = loopback_tls(cert)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    process = cli.popen(
        "serve",
        "--workers",
        str(WORKERS),
        CARDVAULT_HOST="127.0.0.1",
        CARDVAULT_PORT=str(port),
        CARDVAULT_PUBLIC_URL=url,
        CARDVAULT_REDIS_URL=REDIS_URL,
        CARDVAULT_REDIS_PREFIX=fresh_prefix(),
        CARDVAULT_RATE_LIMITS_ENABLED="true",
        CARDVAULT_RATE_LIMIT_SIGNIN="off",
        CARDVAULT_RATE_LIMIT_SIGNIN_IDENTIFIER="off",
        CARDVAULT_RATE_LIMIT_STATUS=f"{STATUS_RATE}/1h",
    )
    served = Served(url=url, tls=tls, process=process)
    try:
        wait_ready(url, tls, process)
        yield served
    finally:
        if process.returncode is None:  # not yet stopped by the test to read its log
            process.terminate()
            process.communicate(timeout=60)


def _sign_in(served: Served, email: str, passcode: str, code: str) -> AgentState:
    data = core.LoginInput(identifier_kind="email", identifier=email, passcode=passcode)
    with served.client() as http:
        return core.login(CardvaultApi(http), served.url, data, totp=code, ask_code=_no_prompt)


def _no_prompt(_question: str) -> str:
    raise AssertionError("no prompt expected")


def _status_of(call: Callable[[], object]) -> int:
    try:
        call()
    except ServiceError as exc:
        return exc.status or 0
    return 200


def _stopped_log(served: Served) -> list[dict[str, object]]:
    served.process.terminate()
    _, stderr = served.process.communicate(timeout=60)
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def test_two_workers_share_lockout_codes_rate_limits_and_the_audit_chain(
    served: Served, cli: Cli, rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator)
    locked, *holders = [a.holder(rt, operator) for _ in range(5)]

    # six wrong passcodes at once, over both workers: three counted, then the card locked
    with ThreadPoolExecutor(6) as pool:
        wrong = list(
            pool.map(
                lambda _n: _status_of(
                    lambda: _sign_in(served, locked.email, "not the passcode 1x", locked.code())
                ),
                range(6),
            )
        )
    with rt.db() as session:
        card = session.scalars(select(Card).where(Card.serial == locked.card.serial)).one()
        assert (card.status, card.failed_attempts) == (CardStatus.LOCKED, 3)
    assert set(wrong) == {401}, wrong  # a locked card answers as a wrong passcode does
    assert _status_of(lambda: _sign_in(served, locked.email, STRONG_PASSCODE, locked.code())) != 200

    # four holders sign in at once (audit events from both workers into one chain)...
    with ThreadPoolExecutor(4) as pool:
        codes = [h.code() for h in holders]
        signed = list(
            pool.map(
                lambda hc: _sign_in(served, hc[0].email, STRONG_PASSCODE, hc[1]),
                zip(holders, codes, strict=True),
            )
        )
    assert [s.card_serial for s in signed] == [h.card.serial for h in holders]
    # ... and a code once used opens nothing on either worker
    reused = [
        _status_of(lambda: _sign_in(served, holders[0].email, STRONG_PASSCODE, codes[0]))
        for _ in range(2)
    ]
    assert 200 not in reused

    # one rate for the address, whichever worker counts
    statuses = []
    for _ in range(STATUS_RATE + 2):
        with served.client() as http:
            statuses.append(
                http.get("/api/v1/certificates/status", params={"fingerprint": "00"}).status_code
            )
    assert 429 not in statuses[:STATUS_RATE]
    assert statuses[STATUS_RATE:] == [429, 429]

    events = _stopped_log(served)
    answered_by = {e["pid"] for e in events if e.get("event") == "http.request"}
    assert len(answered_by) == WORKERS, answered_by
    assert not [pid for pid in answered_by if os.path.exists(f"/proc/{pid}")]  # none left over

    verified = cli.run("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert verified.json["ok"] is True


def test_several_workers_without_redis_are_refused(cli: Cli) -> None:
    refused = cli.run("serve", "--workers", "2", timeout=60)
    assert refused.returncode != 0
    assert "CARDVAULT_REDIS_URL" in refused.error["message"]
    assert "CARDVAULT_WORKERS=1" in refused.error["remedy"]


def test_workers_share_out_the_kdf_slots_and_read_the_data_directory(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CARDVAULT_DATA_DIR", "CARDVAULT_KDF_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(data_dir=cli.data_dir)
    _worker_environment(settings, 64)
    assert Settings().data_dir == cli.data_dir.resolve()  # what --data-dir said, not ./data
    assert Settings().kdf_concurrency == 1  # never 0, however many workers
    monkeypatch.delenv("CARDVAULT_KDF_CONCURRENCY")
    _worker_environment(settings.model_copy(update={"kdf_concurrency": 5}), 2)
    assert "CARDVAULT_KDF_CONCURRENCY" not in os.environ  # a setting of one's own stays
