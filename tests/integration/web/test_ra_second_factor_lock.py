"""The vRA Manager's doors to the second factor (sign-in and re-authentication) count toward
the card's second-factor lock (DESIGN §3.3 revised), over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.domain.lockout import SECOND_FACTOR_LOCK_REASON
from cardvault.services.signin import factor_lockout
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Card, Notification

LATER = timedelta(minutes=11)  # past the re-authentication limit (10 minutes)


def _wrong(user: w.RaUser) -> str:
    return "000000" if user.code() != "000000" else "111111"


def _card(rt: Runtime, user: w.RaUser) -> Card:
    with rt.db() as s:
        card = s.get(Card, user.holder.card.card_id)
        assert card is not None
        return card


def _passcode(c: TestClient, user: w.RaUser) -> None:
    r = w.post(c, "/ra", kind="email", identifier=user.email, passcode=f.STRONG_PASSCODE)
    assert r.status_code == 303, r.text[:1000]


def test_wrong_codes_across_two_sign_ins_lock_the_ras_card_at_the_fifth(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    c = w.client(rt)
    _passcode(c, ra)
    for _ in range(3):
        assert w.post(c, "/ra/login/code", code=_wrong(ra)).status_code == 401
    fresh = w.client(rt)  # another browser, another transaction
    _passcode(fresh, ra)
    assert w.post(fresh, "/ra/login/code", code=_wrong(ra)).status_code == 401
    assert factor_lockout.current(rt, ra.holder.card.card_id) == 4

    fifth = w.post(fresh, "/ra/login/code", code=_wrong(ra))

    assert fifth.status_code == 401
    assert "the card is now locked" in fifth.text
    assert (_card(rt, ra).status, _card(rt, ra).lock_reason) == (
        "locked",
        SECOND_FACTOR_LOCK_REASON,
    )
    # from now on the sign-in page answers as for a wrong passcode, and says what to look for
    again = w.post(
        w.client(rt), "/ra", kind="email", identifier=ra.email, passcode=f.STRONG_PASSCODE
    )
    assert again.status_code == 401
    assert "Passcode or identifier not recognised" in again.text
    assert "If your card has been locked" in again.text


def test_wrong_codes_when_confirming_it_is_you_count_and_the_fifth_signs_the_ra_out(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    other = w.ra_user(rt, operator, "ORGA", email="other.ra@example.org")
    holder = f.active_card(rt, operator, "ORGA", forename="Hana")
    c = w.client(rt)
    w.sign_in(c, ra)
    real = rt.clock
    rt.clock = lambda: real() + LATER
    action = f"/ra/persons/{holder.user_id}/card/lock"
    r = w.post(
        c, "/ra/reauth", page="/ra/reauth?next=" + action, next=action, passcode=f.STRONG_PASSCODE
    )
    assert r.headers["location"] == "/ra/reauth/code"
    for _ in range(4):
        assert w.post(c, "/ra/reauth/code", code=_wrong(ra)).status_code == 401

    fifth = w.post(c, "/ra/reauth/code", code=_wrong(ra))

    assert "the card is now locked" in fifth.text
    assert _card(rt, ra).lock_reason == SECOND_FACTOR_LOCK_REASON
    assert c.get("/ra/persons").headers["location"] == "/ra"  # its sessions ended with the lock
    with rt.db() as s:
        alerts = s.scalars(
            select(Notification.recipient).where(Notification.template == "second_factor_alert")
        )
        assert sorted(alerts) == sorted([ra.email, other.email])
