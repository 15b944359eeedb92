"""The connector against a live service (uvicorn) and a vpcd stand-in, on SQLite and
PostgreSQL: what it answers itself, what it relays, retries, and when it takes the card out."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tests.support import auth as a
from tests.support import piv_service as p
from tests.support.fake_vpcd import FakeVpcd
from tests.support.live_server import live_server

from cardvault.card.apdu import Sw
from cardvault.card.piv import ATR, load_state
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.clients.connector.runner import Connector, insert_for_holder
from cardvault.clients.connector.vpcd import Control
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import PivCard

VERIFY_STATUS = bytes.fromhex("00200080")
GET_CHUID = bytes.fromhex("00cb3fff055c035fc10200")


@pytest.fixture
def use(rt: Runtime, operator: Actor) -> p.InUse:
    return p.issued_and_enrolled(rt, operator, Engine(rt))


@pytest.fixture
def server(rt: Runtime) -> Iterator[str]:
    with live_server(rt) as url:
        yield url


@pytest.fixture
def clients() -> Iterator[list[httpx.Client]]:
    made: list[httpx.Client] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


class Flaky(httpx.BaseTransport):
    """Loses APDU requests on the way (refused) or their answers on the way back."""

    def __init__(self, *, refuse: int = 0, lose_answers: int = 0) -> None:
        self.inner = httpx.HTTPTransport()
        self.refuse, self.lose_answers = refuse, lose_answers

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        relayed = request.url.path == "/api/v1/piv/apdu"
        if relayed and self.refuse:
            self.refuse -= 1
            raise httpx.ConnectError("connection refused", request=request)
        response = self.inner.handle_request(request)
        if relayed and self.lose_answers:
            self.lose_answers -= 1
            response.read()
            response.close()
            raise httpx.ReadError("connection reset", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


@dataclass
class Running:
    connector: Connector
    thread: threading.Thread
    signed_in: threading.Event
    reason: list[str] = field(default_factory=list)

    def stopped(self, timeout: float = 10) -> str:
        self.thread.join(timeout)
        assert not self.thread.is_alive()
        return self.reason[0]


def _start(
    server: str,
    use: p.InUse,
    vpcd: FakeVpcd,
    clients: list[httpx.Client],
    *,
    transport: httpx.BaseTransport | None = None,
    clock: object = None,
) -> Running:
    client = httpx.Client(base_url=server, transport=transport)
    monitor = httpx.Client(base_url=server)
    clients += [client, monitor]
    api = CardvaultApi(client)
    key = base64.b64encode(use.session_key).decode()
    inserted = insert_for_holder(api, token=use.token, session_key=key)
    signed_in = threading.Event()
    signed_in.set()
    extra = {"clock": clock} if clock is not None else {}
    connector = Connector(
        api,
        inserted,
        vpcd_port=vpcd.port,
        still_signed_in=signed_in.is_set,
        poll_interval=0.2,
        monitor=CardvaultApi(monitor),
        **extra,  # type: ignore[arg-type]
    )
    running = Running(
        connector=connector, thread=threading.Thread(target=lambda: None), signed_in=signed_in
    )
    running.thread = threading.Thread(
        target=lambda: running.reason.append(connector.run()), daemon=True
    )
    running.thread.start()
    vpcd.accept()
    assert vpcd.exchange(b"\x04") == ATR
    vpcd.send_control(Control.POWER_ON)
    return running


def _pin_tries(rt: Runtime, card_id: str) -> int:
    with rt.db() as s:
        piv = s.get(PivCard, card_id)
        assert piv is not None
        return load_state(piv.state.encode()).pin_tries.left


def test_public_objects_are_answered_locally_and_the_rest_by_the_service(
    server: str, use: p.InUse, vpcd: FakeVpcd, clients: list[httpx.Client]
) -> None:
    running = _start(server, use, vpcd, clients)
    relay = running.connector.relay
    chuid = vpcd.exchange(GET_CHUID)
    assert chuid[:2] == b"\x53\x3b"
    assert chuid[-2:] == b"\x90\x00"
    assert relay.round_trips == 0
    assert vpcd.exchange(VERIFY_STATUS) == Sw.retries(3).to_bytes(2, "big")
    assert vpcd.exchange(p.verify_apdu()) == b"\x90\x00"
    assert relay.round_trips == 2
    assert vpcd.exchange(VERIFY_STATUS) == b"\x90\x00"  # verified: the service said it stands
    assert relay.round_trips == 2
    vpcd.send_control(Control.RESET)
    assert vpcd.exchange(VERIFY_STATUS) == Sw.retries(3).to_bytes(2, "big")
    assert relay.round_trips == 3
    running.connector.stop("test over")
    assert running.stopped() == "test over"
    assert vpcd.closed_by_card()


def test_a_long_answer_is_cut_up_by_the_connector(
    server: str, use: p.InUse, vpcd: FakeVpcd, clients: list[httpx.Client]
) -> None:
    running = _start(server, use, vpcd, clients)
    assert vpcd.exchange(p.verify_apdu()) == b"\x90\x00"
    before = running.connector.relay.round_trips
    block = b"\x00\x01" + b"\xff" * 202 + b"\x00" + bytes(51)
    body = bytes.fromhex("7c820106820081820100") + block
    first = vpcd.exchange(bytes.fromhex("1087079aff") + body[:255])
    assert first == b"\x90\x00"
    answer = vpcd.exchange(
        bytes.fromhex("0087079a") + bytes((len(body) - 255,)) + body[255:] + b"\x00"
    )
    assert answer[-2:] == b"\x61\x08"
    trips = running.connector.relay.round_trips
    assert trips == before + 1  # both parts of the chained command in one request
    rest = vpcd.exchange(bytes.fromhex("00c0000008"))
    assert len(rest) == 10
    assert rest[-2:] == b"\x90\x00"
    assert running.connector.relay.round_trips == trips
    running.connector.stop("done")
    running.stopped()


def test_logout_elsewhere_takes_the_card_out(
    rt: Runtime, server: str, use: p.InUse, vpcd: FakeVpcd, clients: list[httpx.Client]
) -> None:
    running = _start(server, use, vpcd, clients)
    card_sessions.logout(rt, a.client(), use.token)
    assert running.stopped() == "the session ended"
    assert vpcd.closed_by_card()


def test_signing_out_on_this_pc_takes_the_card_out(
    server: str, use: p.InUse, vpcd: FakeVpcd, clients: list[httpx.Client]
) -> None:
    running = _start(server, use, vpcd, clients)
    running.signed_in.clear()
    assert running.stopped() == "you signed out"
    assert vpcd.closed_by_card()


def test_session_expiry_takes_the_card_out(
    server: str, use: p.InUse, vpcd: FakeVpcd, clients: list[httpx.Client]
) -> None:
    later = datetime.now(UTC) + timedelta(hours=13)
    running = _start(server, use, vpcd, clients, clock=lambda: later)
    assert running.stopped() == "the session expired"
    assert vpcd.closed_by_card()


def test_a_refused_connection_is_retried_without_losing_the_session(
    server: str, use: p.InUse, vpcd: FakeVpcd, clients: list[httpx.Client]
) -> None:
    running = _start(server, use, vpcd, clients, transport=Flaky(refuse=3))
    assert vpcd.exchange(p.verify_apdu()) == b"\x90\x00"
    assert running.connector.relay.round_trips == 4
    running.connector.stop("done")
    running.stopped()


def test_a_lost_answer_is_asked_for_again_not_executed_twice(
    rt: Runtime, server: str, use: p.InUse, vpcd: FakeVpcd, clients: list[httpx.Client]
) -> None:
    running = _start(server, use, vpcd, clients, transport=Flaky(lose_answers=2))
    wrong = p.verify_apdu(b"10293847")
    assert vpcd.exchange(wrong) == Sw.retries(2).to_bytes(2, "big")
    assert _pin_tries(rt, use.holder.card.card_id) == 2
    running.connector.stop("done")
    running.stopped()


def test_no_card_is_inserted_for_a_card_the_session_may_not_use(
    server: str, use: p.InUse, clients: list[httpx.Client]
) -> None:
    clients.append(httpx.Client(base_url=server))
    api = CardvaultApi(clients[0])
    key = base64.b64encode(use.session_key).decode()
    with pytest.raises(ServiceError, match="cannot be used in this session"):
        insert_for_holder(api, token=use.token, session_key=key, serial="CV0000000000")
