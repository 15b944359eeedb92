"""The ingress gate (DESIGN §3.6, revised), driven with chosen client addresses: a host outside
every organisation's networks reaches the portal and the public endpoints and nothing else;
refusals are audited, at most once a minute per source; a change of networks made by the
operator's CLI reaches every instance of the service sharing the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker
from tests.support import factories as f
from tests.support.cli import Cli

from cardvault.config import Settings
from cardvault.services.audit import trail as audit
from cardvault.services.system.runtime import Actor, Runtime, open_runtime
from cardvault.store.models import AuditEvent
from cardvault.web.app import create_app

INSIDE = "192.0.2.10"  # in ORGA's network
OUTSIDE = "198.51.100.7"  # in nobody's
PROXY = "10.9.0.5"
REFUSAL = "This service is not available from your network."
PUBLIC = ("/.well-known/jwks.json", "/api/v1/ca", "/healthz", "/static/ui/cardvault.css")
GATED_API = ("/api/v1/health", "/api/v1/openapi.json", "/api/v1/device", "/api/v1/ra/roles")
GATED_PAGES = ("/ra", "/ra/persons", "/ra/organisation/networks", "/portal/dev/outbox")


@pytest.fixture
def org(rt: Runtime, operator: Actor) -> str:
    return f.org(rt, operator, "ORGA", networks=["192.0.2.0/24", "2001:db8:a::/48"])


def client(rt: Runtime, address: str, *, app: object = None) -> TestClient:
    return TestClient(
        app or create_app(rt),  # type: ignore[arg-type]
        base_url="https://testserver",
        follow_redirects=False,
        client=(address, 40000),
    )


def refusals(rt: Runtime) -> list[AuditEvent]:
    with rt.db() as s:
        return list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "ingress.refused")
                .order_by(AuditEvent.seq)
            )
        )


def assert_api_refusal(r: httpx.Response) -> None:
    assert r.status_code == 403, (r.request.url, r.status_code)
    body = r.json()
    assert body["code"] == "network_not_allowed"
    assert body["detail"] == REFUSAL
    assert body["title"] == "Network not allowed"
    assert "ORGA" not in r.text
    assert "Organisation" not in r.text


def test_a_host_outside_every_network_reaches_only_the_portal_and_public_endpoints(
    rt: Runtime, org: str
) -> None:
    outside = client(rt, OUTSIDE)
    for path in (*PUBLIC, "/portal"):
        assert outside.get(path).status_code == 200, path
    link = outside.get("/portal/reset/no-such-link")  # the portal's own answer, not the gate's
    assert link.status_code != 403
    assert "not available from your network" not in link.text
    for path in GATED_API:
        assert_api_refusal(outside.get(path))
    assert_api_refusal(outside.post("/api/v1/auth/login", content=b"x" * 200_000))
    assert_api_refusal(outside.get("/no/such/path"))
    for path in GATED_PAGES:
        page = outside.get(path)
        assert page.status_code == 403, path
        assert page.headers["content-type"].startswith("text/html")
        assert "This service is not available from your network" in page.text
        assert 'href="/portal"' in page.text  # the portal is open to this host
        assert "ORGA" not in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    inside = client(rt, INSIDE)
    assert inside.get("/api/v1/health").status_code == 200
    assert inside.get("/ra").status_code == 200
    assert client(rt, "2001:db8:a::99").get("/api/v1/health").status_code == 200
    assert client(rt, f"::ffff:{INSIDE}").get("/api/v1/health").status_code == 200


def test_with_no_organisation_only_the_portal_and_public_endpoints_answer(rt: Runtime) -> None:
    local = client(rt, "127.0.0.1")
    assert local.get("/healthz").status_code == 200
    assert local.get("/portal").status_code == 200
    assert_api_refusal(local.get("/api/v1/health"))


def test_the_operator_may_close_the_portal_to_the_internet(rt: Runtime, org: str) -> None:
    rt.settings = rt.settings.model_copy(update={"portal_networks": ["203.0.113.0/24"]})
    outside = client(rt, OUTSIDE)
    page = outside.get("/portal/reset/some-link-token")
    assert page.status_code == 403
    assert "This service is not available from your network" in page.text
    assert 'href="/portal"' not in page.text
    assert outside.get("/.well-known/jwks.json").status_code == 200
    home = client(rt, "203.0.113.5")
    assert home.get("/portal").status_code == 200
    assert_api_refusal(home.get("/api/v1/health"))  # the portal's networks open the portal only
    assert client(rt, INSIDE).get("/portal").status_code == 200  # organisations' networks too
    event, _home = refusals(rt)
    assert event.details["area"] == "/portal"  # never the path: it carries the link token
    assert "some-link-token" not in str(event.details)


def test_portal_networks_are_checked_when_the_service_starts() -> None:
    with pytest.raises(ValueError, match="host bits set"):
        Settings(portal_networks=["203.0.113.9/24"])
    with pytest.raises(ValueError, match="allows every IPv4 address"):
        Settings(trusted_proxies=["0.0.0.0/0"])
    assert Settings(portal_networks=[]).portal_networks == []
    assert Settings().portal_networks == ["0.0.0.0/0", "::/0"]


def test_behind_a_trusted_proxy_the_forwarded_client_is_checked(rt: Runtime, org: str) -> None:
    rt.settings = rt.settings.model_copy(update={"trusted_proxies": ["10.9.0.0/24"]})
    via_proxy = client(rt, PROXY)
    forwarded = {"X-Forwarded-For": f"{OUTSIDE}, {INSIDE}"}  # the client wrote OUTSIDE itself
    assert via_proxy.get("/api/v1/health", headers=forwarded).status_code == 200
    assert_api_refusal(via_proxy.get("/api/v1/health", headers={"X-Forwarded-For": OUTSIDE}))
    assert_api_refusal(via_proxy.get("/api/v1/health"))  # the proxy itself is nobody's
    # a client that is not our proxy cannot choose its address
    spoofed = client(rt, OUTSIDE).get("/api/v1/health", headers={"X-Forwarded-For": INSIDE})
    assert_api_refusal(spoofed)
    events = refusals(rt)
    assert [e.details["client_address"] for e in events] == [OUTSIDE, PROXY]
    assert all(e.organisation_id is None and e.chain == audit.SERVICE_CHAIN for e in events)


def test_without_trusted_proxies_the_header_is_ignored(rt: Runtime, org: str) -> None:
    inside = client(rt, INSIDE)
    assert inside.get("/api/v1/health", headers={"X-Forwarded-For": OUTSIDE}).status_code == 200


def test_refusals_are_audited_once_a_minute_per_source_with_the_count_held_back(
    rt: Runtime, org: str
) -> None:
    start = datetime.now().astimezone()
    rt.clock = lambda: start
    app = create_app(rt)
    outside, other = client(rt, OUTSIDE, app=app), client(rt, "2001:db8:f::1", app=app)
    for _ in range(30):
        assert outside.get("/api/v1/health").status_code == 403
    assert other.post("/api/v1/auth/login", content=b"{}").status_code == 403
    assert other.get("/ra").status_code == 403
    first, second = refusals(rt)
    assert (first.outcome, first.reason) == ("failure", "outside_networks")
    assert first.details == {
        "client_address": OUTSIDE,
        "method": "GET",
        "area": "/api/v1/health",
    }
    assert second.details["area"] == "/api/v1/auth"
    rt.clock = lambda: start + timedelta(seconds=61)
    assert outside.get("/ra/persons").status_code == 403
    later = refusals(rt)[-1]
    assert later.details == {
        "client_address": OUTSIDE,
        "method": "GET",
        "area": "/ra",
        "suppressed": 29,
    }
    assert len(refusals(rt)) == 3
    assert audit.verify(rt, audit.SERVICE_CHAIN) == len(refusals(rt))  # the chain holds


@pytest.fixture
def second_instance(settings: Settings) -> Iterator[Runtime]:
    """Another process's view of the same database: its own runtime, its own memory."""
    other = open_runtime(settings)
    yield other
    other.close()


def test_a_change_by_the_cli_reaches_every_instance_within_a_second(
    rt: Runtime, second_instance: Runtime, org: str, settings: Settings, database_url: str
) -> None:
    start = datetime.now().astimezone()
    instances = [rt, second_instance]
    for instance in instances:
        instance.clock = lambda: start
    clients = [client(instance, OUTSIDE) for instance in instances]
    for c in clients:
        assert_api_refusal(c.get("/api/v1/health"))  # each instance has read the lists

    cli = Cli(data_dir=settings.data_dir, database_url=database_url)
    added = cli.run("org", "networks", "orga", "--add", "198.51.100.0/24").ok().json
    assert added == {
        "code": "ORGA",
        "networks": ["192.0.2.0/24", "2001:db8:a::/48", "198.51.100.0/24"],
        "changed": True,
    }
    for c in clients:  # within the second, an instance may still use what it read
        assert c.get("/api/v1/health").status_code == 403
    for instance in instances:
        instance.clock = lambda: start + timedelta(seconds=1)
    for c in clients:
        assert c.get("/api/v1/health").status_code == 200

    cli.run("org", "networks", "ORGA", "--remove", "198.51.100.0/24").ok()
    for instance in instances:
        instance.clock = lambda: start + timedelta(seconds=2)
    for c in clients:
        assert_api_refusal(c.get("/api/v1/health"))
    changes = [e.details for e in _events(rt, "organisation.networks_changed")]
    assert changes == [
        {"old": ["192.0.2.0/24", "2001:db8:a::/48"], "new": added["networks"]},
        {"old": added["networks"], "new": ["192.0.2.0/24", "2001:db8:a::/48"]},
    ]


def _events(rt: Runtime, action: str) -> list[AuditEvent]:
    with rt.db() as s:
        return list(
            s.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            )
        )


def test_when_the_database_fails_the_lists_last_read_keep_serving(rt: Runtime, org: str) -> None:
    start = datetime.now().astimezone()
    rt.clock = lambda: start
    inside, outside = client(rt, INSIDE), client(rt, OUTSIDE)
    assert inside.get("/api/v1/openapi.json").status_code == 200
    broken = create_engine(f"sqlite:///{rt.data_dir}/no/such/dir/cardvault.db")
    working, rt.db = rt.db, sessionmaker(broken)
    try:
        rt.clock = lambda: start + timedelta(seconds=5)  # due to be read again: it cannot be
        assert inside.get("/api/v1/openapi.json").status_code == 200
        assert_api_refusal(outside.get("/api/v1/openapi.json"))  # and its refusal not written
        # an instance that never read the lists refuses to guess
        unread = Runtime(settings=rt.settings, engine=broken, db=rt.db, master_key=rt.master_key)
        fresh = client(unread, INSIDE)
        r = fresh.get("/api/v1/openapi.json")
        assert r.status_code == 503
        assert r.json()["code"] == "ingress_unavailable"
        assert fresh.get("/healthz").status_code == 200
    finally:
        rt.db = working
        broken.dispose()


def test_the_pki_endpoints_answer_a_host_outside_every_network(rt: Runtime, org: str) -> None:
    """Relying parties anywhere fetch the CRL and the CA certificate and ask OCSP (issue 17)."""
    from cardvault.crypto import x509 as cx509
    from cardvault.services.pki import ca

    outside = client(rt, OUTSIDE)
    key_id = cx509.ca_key_id(ca.load(rt).cert)
    crl = outside.get(f"/pki/crl/{key_id}.crl")
    assert crl.status_code == 200
    assert crl.headers["content-type"] == "application/pkix-crl"
    assert outside.get(f"/pki/ca/{key_id}.crt").status_code == 200
    ocsp = outside.post("/pki/ocsp", content=b"not a request")
    assert ocsp.status_code == 200
    assert ocsp.headers["content-type"] == "application/ocsp-response"
    assert outside.get("/pki/ocsp/AAAA").status_code == 200
    assert outside.get("/pki/crl/not-hex.crl").status_code == 404
    assert_api_refusal(outside.get("/pkix"))
