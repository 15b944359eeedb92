"""The vRA Manager pairs the holder's phone (device protocol): opening the page makes no
pairing code; pressing its button makes one and shows it once, as a QR code."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones, qr
from tests.support import ra_web as w

from cardvault.services.devices import pairing
from cardvault.services.devices.errors import PairingUsed
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Device, Link

APPLICATIONS = ("authenticator", "mia")


@pytest.fixture
def world(rt: Runtime, operator: Actor) -> tuple[TestClient, f.IssuedFixture]:
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    holder = f.active_card(rt, operator, "ORGA", forename="Pat", surname="Phone")
    c = w.client(rt)
    w.sign_in(c, ra)
    return c, holder


def _url(holder: f.IssuedFixture, application: str) -> str:
    return f"/ra/persons/{holder.user_id}/methods/device?application={application}"


def _links(rt: Runtime, card_id: str) -> list[Link]:
    with rt.db() as s:
        query = select(Link).where(Link.card_id == card_id, Link.purpose == pairing.PURPOSE)
        return list(s.scalars(query.order_by(Link.created_at)))


def _state(rt: Runtime, card_id: str) -> tuple[int, int]:
    """Pairing codes made for the card, and audit events of any kind."""
    with rt.db() as s:
        events = s.scalar(select(func.count()).select_from(AuditEvent))
    return len(_links(rt, card_id)), events or 0


def test_opening_or_reloading_the_page_makes_no_pairing_code(
    rt: Runtime, world: tuple[TestClient, f.IssuedFixture]
) -> None:
    c, holder = world
    before = _state(rt, holder.card_id)
    for application in APPLICATIONS:
        for _ in range(2):
            r = c.get(_url(holder, application))
            assert r.status_code == 200
            assert "Show a pairing code" in r.text
            assert f'action="{_url(holder, application)}"' in r.text
            assert 'class="qr"' not in r.text
    assert _state(rt, holder.card_id) == before


def test_the_button_shows_a_code_the_holders_phone_pairs_with(
    rt: Runtime, world: tuple[TestClient, f.IssuedFixture], tmp_path: Path
) -> None:
    c, holder = world
    uris = {}
    for application in APPLICATIONS:
        r = w.post(c, _url(holder, application))
        assert r.status_code == 200, r.text[:500]
        assert r.headers["cache-control"] == "no-store"
        assert "The code expires at" in r.text
        assert "Show a new pairing code" in r.text
        uris[application] = qr.read_page_qr(r.text, tmp_path)
    links = _links(rt, holder.card_id)
    assert len(links) == 2
    assert [link.revoked_at is None for link in links] == [False, True]  # a new code replaces
    phone = phones.pair_with_uri(rt, uris["mia"], application="mia")
    with rt.db() as s:
        device = s.get(Device, phone.device_id)
        assert device is not None
        assert (device.card_id, device.application) == (holder.card_id, "mia")
    with pytest.raises(PairingUsed):
        phones.pair_with_uri(rt, uris["mia"])
    with pytest.raises(PairingUsed):
        phones.pair_with_uri(rt, uris["authenticator"])


def test_sending_the_same_form_twice_makes_one_code(
    rt: Runtime, world: tuple[TestClient, f.IssuedFixture]
) -> None:
    c, holder = world
    data = w.form_data(c, _url(holder, "mia"))
    assert 'class="qr"' in c.post(_url(holder, "mia"), data=data).text
    again = c.post(_url(holder, "mia"), data=data)
    assert again.status_code == 303
    assert again.headers["location"] == _url(holder, "mia")
    shown = c.get(again.headers["location"])
    assert "already shown and cannot be shown again" in shown.text
    assert 'class="qr"' not in shown.text
    assert len(_links(rt, holder.card_id)) == 1


@pytest.mark.parametrize("token", [None, "forged"])
def test_a_post_without_the_csrf_token_is_refused_and_makes_no_code(
    rt: Runtime, world: tuple[TestClient, f.IssuedFixture], token: str | None
) -> None:
    c, holder = world
    data = w.form_data(c, _url(holder, "authenticator"))
    if token is None:
        del data["csrf_token"]
    else:
        data["csrf_token"] = token
    before = _state(rt, holder.card_id)
    r = c.post(_url(holder, "authenticator"), data=data)
    assert r.status_code == 403
    assert 'class="qr"' not in r.text
    assert _state(rt, holder.card_id) == before


def test_a_card_that_cannot_pair_yet_is_explained_on_the_page(
    rt: Runtime, operator: Actor, world: tuple[TestClient, f.IssuedFixture]
) -> None:
    c, _holder = world
    newcomer = f.issued_card(rt, operator, "ORGA", forename="Nia", surname="New")
    r = w.post(c, _url(newcomer, "authenticator"))
    assert r.status_code == 409
    assert "There is a problem" in r.text
    assert "only an active card can pair a device" in r.text
    assert 'class="qr"' not in r.text
    assert _links(rt, newcomer.card_id) == []
