"""One instance's clock ±90 s off, faked through its settings (issue 20).

What correct means under skew: every expiry the service stores (a link's, a card session's)
is an absolute instant in the database, and each instance compares it with its own clock. So
an instance ``s`` seconds ahead ends a link or a session ``s`` seconds early, one behind ends
it ``s`` seconds late, and no instance shifts a stored expiry for the others (DESIGN §4).
With links lasting at least 5 minutes, 90 s of skew leaves a link between 3.5 and 6.5 minutes
of life: tolerable, and bounded by keeping NTP running, which the operator guide asks for.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from tests.support.auth import HolderFixture
from tests.support.factories import STRONG_PASSCODE
from tests.support.topology import Topology, sign, sign_in

from cardvault.clients.agent.state import AgentState
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.services.recovery import links
from cardvault.services.system.runtime import skewed
from cardvault.store.db import transaction
from cardvault.store.models import Card, CardSession
from cardvault.store.types import utcnow

pytestmark = pytest.mark.faults

#: the shortest a reset link may last (org policy ``reset_link_minutes`` ≥ 5)
LINK_MINUTES = 5


@pytest.mark.parametrize("offset", [90, -90])
def test_an_instance_90_seconds_off_keeps_windows_and_expiry(
    topology: Topology, make_holders: Callable[[int], list[HolderFixture]], offset: int
) -> None:
    h, other, linked, relinked = make_holders(4)
    topology.script("kill", "3")
    topology.script("start", "3", f"--env=CARDVAULT_CLOCK_OFFSET_SECONDS={offset}")
    skewed_url = topology.instance_url(3)
    try:
        with topology.client(skewed_url) as http:
            api = CardvaultApi(http)
            # the TOTP window is the instance's: the code of the real time is 3 steps away
            with pytest.raises(ServiceError) as refused:
                sign_in(api, skewed_url, h.email, STRONG_PASSCODE, h.code())
            assert refused.value.status == 401
            # a code of its own time is right; the sealed envelopes of a client on the real
            # time still open there (their leeway covers the skew)
            session = sign_in(
                api, skewed_url, h.email, STRONG_PASSCODE, h.code(time.time() + offset)
            )
            sign(api, session, hashlib.sha256(b"skewed").digest())
        # a session opened on the skewed instance works on the others, and the reverse
        with topology.client(topology.instance_url(1)) as http:
            api = CardvaultApi(http)
            sign(api, session, hashlib.sha256(b"straight").digest())
            straight = sign_in(api, topology.url, other.email, STRONG_PASSCODE, other.code())
        with topology.client(skewed_url) as http:
            sign(CardvaultApi(http), straight, hashlib.sha256(b"across").digest())
        _links_expire_on_each_instances_clock(topology, offset, linked, relinked)
        _sessions_expire_on_each_instances_clock(topology, offset, straight, other)
    finally:
        topology.script("kill", "3")
        topology.script("start", "3")


def _reset_link(topology: Topology, h: HolderFixture, *, expires_in: int) -> str:
    """A reset link made by the service's own function on a runtime whose clock is set so
    that the link (of the shortest lifetime) expires ``expires_in`` seconds from now."""
    rt = topology.runtime()
    rt.clock = skewed(utcnow, expires_in - LINK_MINUTES * 60)
    try:
        with transaction(rt.db) as session:
            card = session.get(Card, h.card.card_id)
            assert card is not None
            made = links.create(
                session, rt, purpose=links.Purpose.RESET, card=card, minutes=LINK_MINUTES
            )
    finally:
        rt.engine.dispose()
    return made.token


def _link_page(topology: Topology, base_url: str, token: str) -> int:
    """The status of the page a link opens: a GET, which never uses the link up."""
    with httpx.Client(verify=topology.tls(), timeout=10) as http:
        return http.get(f"{base_url}/portal/reset/{token}").status_code


def _links_expire_on_each_instances_clock(
    topology: Topology, offset: int, linked: HolderFixture, relinked: HolderFixture
) -> None:
    skewed_url, true_url = topology.instance_url(3), topology.instance_url(1)
    soon = _reset_link(topology, linked, expires_in=60)
    gone = _reset_link(topology, relinked, expires_in=-60)
    # 60 s left in true time: the instance 90 s ahead already sees it expired
    assert _link_page(topology, true_url, soon) == 200
    assert _link_page(topology, skewed_url, soon) == (404 if offset > 0 else 200)
    # expired 60 s ago in true time: the instance 90 s behind still opens it
    assert _link_page(topology, true_url, gone) == 404
    assert _link_page(topology, skewed_url, gone) == (404 if offset > 0 else 200)


def _sessions_expire_on_each_instances_clock(
    topology: Topology, offset: int, session: AgentState, h: HolderFixture
) -> None:
    """A card session whose absolute end is 60 s away (true time): refused by the instance
    ahead, still used on the one behind and on the true clock."""
    _end_sessions_at(topology, h, datetime.now().astimezone() + timedelta(seconds=60))
    with topology.client(topology.instance_url(3)) as http:
        api = CardvaultApi(http)
        if offset > 0:
            with pytest.raises(ServiceError) as refused:
                sign(api, session, hashlib.sha256(b"late").digest())
            assert refused.value.status == 401
        else:
            sign(api, session, hashlib.sha256(b"in time").digest())
    with topology.client(topology.instance_url(1)) as http:
        sign(CardvaultApi(http), session, hashlib.sha256(b"true").digest())


def _end_sessions_at(topology: Topology, h: HolderFixture, at: datetime) -> None:
    rt = topology.runtime()
    try:
        with transaction(rt.db) as s:
            rows = s.scalars(select(CardSession).where(CardSession.card_id == h.card.card_id))
            for row in rows:
                row.expires_at = at
    finally:
        rt.engine.dispose()
