"""The vRA Manager's networks page over HTTP (SQLite and PostgreSQL): an RA manager sees and
changes their organisation's networks; bad lists are refused precisely and change nothing;
opening the internet or shutting out their own address needs a confirmation; the change is
audited with the old and the new list and reaches the ingress gate at once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import ra_web as w

from cardvault.services.networks import changes as org_networks
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Organisation, Person
from cardvault.web.app import create_app

PAGE = "/ra/organisation/networks"
SHOWN = re.compile(r'name="shown" value="([^"]*)"')


@pytest.fixture
def manager(rt: Runtime, operator: Actor) -> tuple[TestClient, w.RaUser]:
    return w.signed_in_ra(rt, operator)


def send(c: TestClient, networks: str, **extra: str):  # type: ignore[no-untyped-def]
    page = c.get(PAGE)
    assert page.status_code == 200, page.text[:300]
    data = w.form_data(c, PAGE, networks=networks, **extra)
    found = SHOWN.search(page.text)
    assert found
    data.setdefault("shown", found.group(1))
    return c.post(PAGE, data=data)


def networks_of(rt: Runtime, code: str = "ORGA") -> list[str]:
    with rt.db() as s:
        org = s.scalar(select(Organisation).where(Organisation.code == code))
        assert org is not None
        return list(org.allowed_networks)


def changes(rt: Runtime) -> list[AuditEvent]:
    with rt.db() as s:
        query = select(AuditEvent).where(AuditEvent.action == "organisation.networks_changed")
        return list(s.scalars(query.order_by(AuditEvent.seq)))


def test_the_manager_sees_the_networks_and_where_they_are(manager) -> None:  # type: ignore[no-untyped-def]
    c, _ra = manager
    page = c.get(PAGE)
    assert page.status_code == 200
    assert "127.0.0.0/8" in page.text
    assert "::1/128" in page.text
    assert re.search(
        r"Your address now is <span class=\"mono\">127.0.0.1</span>, inside", page.text
    )
    assert 'href="/ra/organisation/networks" aria-current="page">Networks' in page.text


def test_a_new_list_is_saved_audited_and_admitted_at_ingress_at_once(  # type: ignore[no-untyped-def]
    rt: Runtime, manager
) -> None:
    c, ra = manager
    outside = TestClient(create_app(rt), base_url="https://testserver", client=("198.51.100.7", 1))
    assert outside.get("/api/v1/health").status_code == 403
    r = send(c, "127.0.0.0/8\n::1/128\n198.51.100.0/24, 2001:db8::/48")
    assert r.status_code == 303, r.text[:2000]
    assert "are saved (4 networks)" in c.get(PAGE).text
    assert networks_of(rt) == ["127.0.0.0/8", "::1/128", "198.51.100.0/24", "2001:db8::/48"]
    (event,) = changes(rt)
    assert event.details == {
        "old": ["127.0.0.0/8", "::1/128"],
        "new": ["127.0.0.0/8", "::1/128", "198.51.100.0/24", "2001:db8::/48"],
    }
    assert event.actor == f"ra:{_person_id(rt, ra)}"
    assert outside.get("/api/v1/health").status_code == 200  # no second needed on this instance


def test_bad_entries_are_each_named_and_nothing_changes(rt: Runtime, manager) -> None:  # type: ignore[no-untyped-def]
    c, _ra = manager
    r = send(c, "127.0.0.0/8\n::1/128\n10.20.3.4/16\nhospital-wifi")
    assert r.status_code == 422
    assert "There is a problem" in r.text
    assert "&#39;10.20.3.4/16&#39; has host bits set: the network is 10.20.0.0/16" in r.text
    assert "&#39;hospital-wifi&#39; is not a network" in r.text
    assert 'href="#f-networks"' in r.text
    assert "hospital-wifi</textarea>" in r.text  # what was typed stays to be corrected
    too_many = "\n".join(["127.0.0.0/8"] + [f"10.{i}.0.0/16" for i in range(100)])
    r = send(c, too_many)
    assert r.status_code == 422
    assert "101 networks are too many: at most 100" in r.text
    assert networks_of(rt) == ["127.0.0.0/8", "::1/128"]
    assert changes(rt) == []


def test_the_internet_needs_a_confirmation(rt: Runtime, manager) -> None:  # type: ignore[no-untyped-def]
    c, _ra = manager
    r = send(c, "0.0.0.0/0\n::1/128")
    assert r.status_code == 422
    assert "0.0.0.0/0 allows every IPv4 address on the internet" in r.text
    assert 'href="#f-allow_everywhere"' in r.text
    assert 'id="f-allow_everywhere"' in r.text
    assert networks_of(rt) == ["127.0.0.0/8", "::1/128"]
    r = send(c, "0.0.0.0/0\n::1/128", allow_everywhere="yes")
    assert r.status_code == 303
    assert networks_of(rt) == ["0.0.0.0/0", "::1/128"]


def test_shutting_out_ones_own_address_needs_a_confirmation(rt: Runtime, manager) -> None:  # type: ignore[no-untyped-def]
    c, _ra = manager
    r = send(c, "192.0.2.0/24")
    assert r.status_code == 422
    assert "Your address now, 127.0.0.1, is not on the new list" in r.text
    assert 'id="f-confirm_lock_out"' in r.text
    assert networks_of(rt) == ["127.0.0.0/8", "::1/128"]
    r = send(c, "192.0.2.0/24", confirm_lock_out="yes")
    assert r.status_code == 303
    assert networks_of(rt) == ["192.0.2.0/24"]
    gone = c.get("/ra/persons")  # no organisation has loopback any more: the gate refuses
    assert gone.status_code == 403
    assert "This service is not available from your network" in gone.text


def test_a_list_changed_by_someone_else_meanwhile_is_not_overwritten(  # type: ignore[no-untyped-def]
    rt: Runtime, operator: Actor, manager
) -> None:
    c, _ra = manager
    stale = SHOWN.search(c.get(PAGE).text)
    assert stale
    org_networks.change(
        rt, operator, org_networks.NetworksChange(add=("203.0.113.0/24",)), code="ORGA"
    )
    r = send(c, "127.0.0.0/8\n::1/128\n198.51.100.0/24", shown=stale.group(1))
    assert r.status_code == 409
    assert "changed by someone else meanwhile" in r.text
    assert "203.0.113.0/24" in r.text  # the list as it is now
    assert networks_of(rt) == ["127.0.0.0/8", "::1/128", "203.0.113.0/24"]


def test_the_same_form_sent_twice_changes_once(rt: Runtime, manager) -> None:  # type: ignore[no-untyped-def]
    c, _ra = manager
    page = c.get(PAGE).text
    data = {
        "csrf_token": w.csrf(page),
        "form_id": w.FORM_ID.search(page).group(1),  # type: ignore[union-attr]
        "shown": "127.0.0.0/8 ::1/128",
        "networks": "127.0.0.0/8 ::1/128 192.0.2.0/24",
    }
    assert c.post(PAGE, data=data).status_code == 303
    again = c.post(PAGE, data={**data, "networks": "127.0.0.0/8 ::1/128 198.51.100.0/24"})
    assert again.status_code == 303
    assert "already sent" in c.get(PAGE).text
    assert len(changes(rt)) == 1
    assert networks_of(rt) == ["127.0.0.0/8", "::1/128", "192.0.2.0/24"]


def test_a_form_without_its_csrf_token_is_refused(rt: Runtime, manager) -> None:  # type: ignore[no-untyped-def]
    c, _ra = manager
    r = c.post(PAGE, data={"networks": "192.0.2.0/24", "shown": "127.0.0.0/8 ::1/128"})
    assert r.status_code == 403
    assert networks_of(rt) == ["127.0.0.0/8", "::1/128"]


def test_the_change_needs_a_recent_sign_in(rt: Runtime, manager) -> None:  # type: ignore[no-untyped-def]
    c, _ra = manager
    page = c.get(PAGE).text
    real = rt.clock
    rt.clock = lambda: real() + timedelta(minutes=11)
    try:
        r = c.get(PAGE)
        assert r.status_code == 303
        assert r.headers["location"] == "/ra/reauth?next=/ra/organisation/networks"
        r = c.post(
            PAGE,
            data={
                "csrf_token": w.csrf(page),
                "form_id": "x1",
                "shown": "127.0.0.0/8 ::1/128",
                "networks": "127.0.0.0/8 ::1/128 192.0.2.0/24",
            },
        )
        assert r.status_code == 303
        assert r.headers["location"].startswith("/ra/reauth")
    finally:
        rt.clock = real
    assert changes(rt) == []


def _person_id(rt: Runtime, ra: w.RaUser) -> str:
    with rt.db() as s:
        person = s.scalar(select(Person).where(Person.email == ra.email))
        assert person is not None
        return person.id
