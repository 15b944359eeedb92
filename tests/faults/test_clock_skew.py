"""One instance's clock ±90 s off, faked through its settings (issue 20)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import pytest
from tests.support.auth import HolderFixture
from tests.support.factories import STRONG_PASSCODE
from tests.support.topology import Topology, sign, sign_in

from cardvault.clients.common.api import CardvaultApi, ServiceError

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("offset", [90, -90])
def test_an_instance_90_seconds_off_keeps_windows_and_expiry(
    topology: Topology, make_holders: Callable[[int], list[HolderFixture]], offset: int
) -> None:
    h, other = make_holders(2)
    topology.script("kill", "3")
    topology.script("start", "3", f"--env=CARDVAULT_CLOCK_OFFSET_SECONDS={offset}")
    skewed = topology.instance_url(3)
    try:
        with topology.client(skewed) as http:
            api = CardvaultApi(http)
            # the TOTP window is the instance's: the code of the real time is 3 steps away
            with pytest.raises(ServiceError) as refused:
                sign_in(api, skewed, h.email, STRONG_PASSCODE, h.code())
            assert refused.value.status == 401
            # a code of its own time is right; the sealed envelopes of a client on the real
            # time still open there (their leeway covers the skew)
            session = sign_in(api, skewed, h.email, STRONG_PASSCODE, h.code(time.time() + offset))
            sign(api, session, hashlib.sha256(b"skewed").digest())
        # a session opened on the skewed instance works on the others, and the reverse
        with topology.client(topology.instance_url(1)) as http:
            api = CardvaultApi(http)
            sign(api, session, hashlib.sha256(b"straight").digest())
            straight = sign_in(api, topology.url, other.email, STRONG_PASSCODE, other.code())
        with topology.client(skewed) as http:
            sign(CardvaultApi(http), straight, hashlib.sha256(b"across").digest())
    finally:
        topology.script("kill", "3")
        topology.script("start", "3")
