"""The fault tier (every module says ``pytestmark = pytest.mark.faults``): one reference
topology for the session (scripts/topology, test KDF, its own folder and ports), of which each
test breaks a part on purpose and, unless it cannot (a promoted standby stays the primary),
repairs it. Starting it is most of the tier's time, hence once."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from tests.support import auth
from tests.support import factories as f
from tests.support.auth import HolderFixture
from tests.support.topology import Topology, running

from cardvault.services.system.runtime import Actor

#: base port of the fault tier's topology (a developer's own `scripts/topology up` uses 18440)
PORT = 18540
ORG = "FLT"


@pytest.fixture(scope="session")
def topology() -> Iterator[Topology]:
    # rate limits off: the streams sign in from one address far faster than people do
    with running(PORT, "CARDVAULT_RATE_LIMITS_ENABLED=false") as topo:
        rt = topo.runtime()
        try:
            # P-256 cards: the tier tests the topology, not RSA key generation
            f.org(
                rt,
                Actor.operator("fault-tier"),
                ORG,
                networks=auth.LOOPBACK,
                policy={"key_algorithm": "ecp256"},
            )
        finally:
            rt.engine.dispose()
        yield topo


@pytest.fixture(scope="session")
def make_holders(topology: Topology) -> Callable[[int], list[HolderFixture]]:
    """Enrolled card holders with a TOTP authenticator, made by the service's own functions."""

    def make(count: int) -> list[HolderFixture]:
        rt = topology.runtime()
        try:
            return [auth.holder(rt, Actor.operator("fault-tier"), ORG) for _ in range(count)]
        finally:
            rt.engine.dispose()

    return make
