"""A reader link's channel over real HTTP (DESIGN §3.8 revised): each APDU is a ``dir``/A256GCM
envelope under the link's CK, answered with one read and one short write; replays, other
links' and sessions' requests and an ended link's CK are refused, and nothing is run."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.support import auth as a
from tests.support import piv_service as p
from tests.support.live_server import live_server

from cardvault.clients.common import shell
from cardvault.clients.common.api import CardvaultApi
from cardvault.clients.connector.relay import ServiceRelay
from cardvault.clients.connector.runner import insert_for_holder
from cardvault.crypto import channel
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import PivLink, UsedNonce
from cardvault.store.statements import counted

JOSE = {"Content-Type": "application/jose"}
#: GET DATA of the CHUID (the connector would answer it from its cache; here it is sent)
GET_CHUID = bytes.fromhex("00CB3FFF055C035FC10200")


class Link:
    """One connector's link: its id, channel key and sequence numbers."""

    def __init__(self, http: httpx.Client, use: p.InUse) -> None:
        self.http, self.use = http, use
        key = base64.b64encode(use.session_key).decode()
        creds = insert_for_holder(CardvaultApi(http), token=use.token, session_key=key).credentials
        assert creds.channel_key is not None
        self.id, self.key, self.seq = creds.link_id, base64.b64decode(creds.channel_key), 0

    def claims(self, apdu: bytes = GET_CHUID, **changes: object) -> dict[str, object]:
        self.seq += 1
        return {
            "token": self.use.token,
            "session_key": base64.b64encode(self.use.session_key).decode(),
            "link_id": self.id,
            "seq": self.seq,
            "apdu": base64.b64encode(apdu).decode(),
            **changes,
        }

    def seal(self, claims: dict[str, object], *, kid: str | None = None) -> tuple[str, str]:
        return channel.seal_channel_request(self.key, kid or self.id, claims, now=time.time())

    def post(self, token: str) -> httpx.Response:
        return self.http.post("/api/v1/piv/apdu", content=token, headers=JOSE)

    def send(self, apdu: bytes = GET_CHUID) -> bytes:
        token, jti = self.seal(self.claims(apdu))
        response = self.post(token)
        assert response.status_code == 200, response.text
        answer = channel.open_channel_response(self.key, self.id, jti, response.text)
        return base64.b64decode(str(answer["response"]))


@pytest.fixture
def use(rt: Runtime, operator: Actor) -> p.InUse:
    return p.issued_and_enrolled(rt, operator, Engine(rt))


@pytest.fixture
def http(rt: Runtime) -> Iterator[httpx.Client]:
    with live_server(rt) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def _last_seq(rt: Runtime, link_id: str) -> int | None:
    with rt.db() as s:
        link = s.get(PivLink, link_id)
        return None if link is None else link.last_seq


def _nonces(rt: Runtime) -> int:
    with rt.db() as s:
        return s.query(UsedNonce).count()


def test_an_apdu_costs_one_read_and_one_short_write(
    rt: Runtime, use: p.InUse, http: httpx.Client
) -> None:
    link = Link(http, use)
    assert link.send(p.verify_apdu())[-2:] == b"\x90\x00"
    link.send()  # the link's CK is now open in the service
    with counted(rt.engine) as count:
        assert link.send()[-2:] == b"\x90\x00"
    assert count.transactions == 2, count.statements
    kinds = [sql.split()[0] for sql in count.statements]
    assert kinds == ["SELECT", "INSERT", "UPDATE"], count.statements


def test_a_replayed_apdu_request_is_refused_and_not_answered(
    rt: Runtime, use: p.InUse, http: httpx.Client
) -> None:
    link = Link(http, use)
    token, _ = link.seal(link.claims(p.verify_apdu()))
    assert link.post(token).status_code == 200
    seq = _last_seq(rt, link.id)
    again = link.post(token)
    assert again.status_code == 401
    assert again.json()["code"] == "envelope_replayed"
    assert _last_seq(rt, link.id) == seq


def test_another_links_kid_or_session_is_refused(
    rt: Runtime, use: p.InUse, http: httpx.Client, operator: Actor
) -> None:
    mine, other = Link(http, use), Link(http, use)
    mine.send(), other.send()
    # my key under the other link's kid: it does not decrypt there
    token, _ = mine.seal(other.claims(), kid=other.id)
    refused = mine.post(token)
    assert refused.status_code == 401
    assert refused.json()["code"] == "envelope_broken"
    # my channel naming the other link, or another session's token: refused, nothing run
    seq = _last_seq(rt, other.id)
    token, _ = mine.seal(other.claims())
    crossed = mine.post(token)
    assert crossed.status_code == 401
    assert crossed.json()["code"] == "channel_mismatch"
    assert _last_seq(rt, other.id) == seq
    stranger = a.holder(rt, operator, use.holder.card.org, forename="Sam", surname="Stranger")
    session = a.login(Engine(rt), stranger, code=stranger.code()).session
    assert session is not None
    token, _ = mine.seal(mine.claims(token=session.token))
    assert mine.post(token).json()["code"] == "channel_mismatch"


def test_the_channel_key_of_an_ended_link_is_refused(
    rt: Runtime, use: p.InUse, http: httpx.Client
) -> None:
    link = Link(http, use)
    link.send()  # its CK is open in the service now
    closed = http.delete(
        f"/api/v1/piv/links/{link.id}", headers={"Authorization": f"Bearer {use.token}"}
    )
    assert closed.status_code == 204
    remembered = _nonces(rt)
    token, _ = link.seal(link.claims())
    refused = link.post(token)
    assert refused.status_code == 410
    assert refused.json()["code"] == "piv_link_closed"
    assert _nonces(rt) == remembered  # refused before anything was written
    # and once forgotten, the CK is not found at all
    token, _ = link.seal(link.claims())
    assert link.post(token).json()["code"] == "channel_closed"


def test_the_connector_relays_every_apdu_on_one_kept_alive_connection(
    rt: Runtime, use: p.InUse, http: httpx.Client
) -> None:
    ports: list[object] = []
    with shell.http_client(str(http.base_url), None) as client:
        client.event_hooks["response"] = [
            lambda r: ports.append(r.extensions["network_stream"].get_extra_info("client_addr"))
        ]
        api = CardvaultApi(client)
        key = base64.b64encode(use.session_key).decode()
        inserted = insert_for_holder(api, token=use.token, session_key=key)
        relay = ServiceRelay(api, inserted.credentials)
        for _ in range(5):
            assert relay.relay(GET_CHUID)[-2:] == b"\x90\x00"
    assert relay.round_trips == 5
    assert len(ports) == 7  # the JWKS, the link, five APDUs
    assert len(set(ports)) == 1, ports
