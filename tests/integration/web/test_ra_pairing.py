"""The vRA Manager shows a pairing QR for the holder's phone (device protocol)."""

from __future__ import annotations

import base64
from urllib.parse import unquote

from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.services.runtime import Actor, Runtime
from cardvault.store.models import Link


def test_pairing_page_shows_a_single_use_code_bound_to_the_card(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    holder = f.active_card(rt, operator, "ORGA", forename="Pat", surname="Phone")
    c = w.client(rt)
    w.sign_in(c, ra)
    for application in ("authenticator", "mia"):
        r = c.get(f"/ra/persons/{holder.user_id}/methods/device?application={application}")
        assert r.status_code == 200
        assert 'class="qr" src="data:' in r.text
        assert "not available" not in r.text
    with rt.db() as s:
        links = list(
            s.scalars(
                select(Link).where(Link.card_id == holder.card_id, Link.purpose == "device_pairing")
            )
        )
    assert len(links) == 2
    assert sum(link.revoked_at is None for link in links) == 1  # a new code revokes the older
    src = r.text.split('class="qr" src="', 1)[1].split('"', 1)[0]
    head, _, body = src.partition(",")
    svg = base64.b64decode(body).decode() if ";base64" in head else unquote(body)
    assert "<svg" in svg
