"""vRA Manager workflows over HTTP on SQLite and PostgreSQL: every form, good and bad input."""

from __future__ import annotations

import csv
import io
import time

import pyotp
import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.crypto.keyslots import open_invitation_slot
from cardvault.domain.vocabulary import AppletOrigin
from cardvault.services.cards.sealing import open_record
from cardvault.services.recovery import links
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Association, Card, Link, Notification, PivCard


@pytest.fixture
def setup(rt: Runtime, operator: Actor):  # type: ignore[no-untyped-def]
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    c = w.client(rt)
    w.sign_in(c, ra)
    return c, ra


def _card(rt: Runtime, serial: str) -> Card:
    with rt.db() as s:
        card = s.scalar(select(Card).where(Card.serial == serial))
        assert card is not None
        return card


def test_issue_then_enrol_weak_then_strong(rt: Runtime, operator: Actor, setup) -> None:  # type: ignore[no-untyped-def]
    c, _ra = setup
    uid = f.person(rt, operator, "ORGA", forename="Carol", surname="Jones")
    url = f"/ra/persons/{uid}"
    r = w.post(c, f"{url}/issue", issuance_passcode="issue-me-1", confirm="issue-me-2")
    assert r.status_code == 422
    assert "different" in r.text
    r = w.post(c, f"{url}/issue", issuance_passcode="issue-me-1", confirm="issue-me-1")
    assert r.status_code == 303
    page = c.get(url).text
    assert "issued" in page
    assert "Card CV" in page  # the notice
    enrol = {
        "email": "carol@example.org",
        "phone": "07700 900123",
        "issuance_passcode": "issue-me-1",
        "passcode": "password1",
        "passcode_confirm": "password2",
        "question1": "What was the name of your first pet?",
        "answer1": "Rex",
        "question2": "What was the name of your first pet?",
        "answer2": "rex",
        "question3": "__own__",
        "own3": "",
        "answer3": "x",
    }
    r = w.post(c, f"{url}/enrol", **enrol)
    assert r.status_code == 422
    body = r.text
    assert "There is a problem" in body
    assert 'href="#f-passcode"' in body
    assert 'href="#f-passcode_confirm"' in body
    assert 'href="#f-question2"' in body
    assert 'href="#f-own3"' in body
    assert "password1" not in body  # secrets are never echoed
    assert "issue-me-1" not in body
    assert 'value="carol@example.org"' in body  # typed values kept
    strong = {
        **enrol,
        "passcode": f.STRONG_PASSCODE,
        "passcode_confirm": f.STRONG_PASSCODE,
        "question2": "In which town or city were you born?",
        "answer2": "Leeds",
        "own3": "Name of my favourite teacher?",
        "answer3": "Mrs Smith",
    }
    weak_pin = w.post(c, f"{url}/enrol", **strong, card_pin="111111", card_pin_confirm="111111")
    assert weak_pin.status_code == 422
    assert 'href="#f-card_pin"' in weak_pin.text
    assert 'value="111111"' not in weak_pin.text
    r = w.post(c, f"{url}/enrol", **strong, card_pin="27182818", card_pin_confirm="27182818")
    assert r.status_code == 303, r.text
    page = c.get(url).text
    assert "active" in page
    assert "Name of my favourite teacher?" in page
    with rt.db() as s:  # the card's PIV applet, built with the card PIN the holder chose
        pivs = list(s.scalars(select(PivCard)))
    assert [p.origin for p in pivs] == [AppletOrigin.SERVICE]


def test_double_submission_issues_one_card(rt: Runtime, operator: Actor, setup) -> None:  # type: ignore[no-untyped-def]
    c, _ra = setup
    uid = f.person(rt, operator, "ORGA")
    data = w.form_data(
        c, f"/ra/persons/{uid}/issue", issuance_passcode="issue-me-1", confirm="issue-me-1"
    )
    first = c.post(f"/ra/persons/{uid}/issue", data=data)
    second = c.post(f"/ra/persons/{uid}/issue", data=data)
    assert first.status_code == second.status_code == 303
    with rt.db() as s:
        assert (
            len(list(s.scalars(select(Card).where(Card.person_id.is_not(None))))) == 2
        )  # RA's + one


def test_totp_association_confirmed_with_an_independent_code(
    rt: Runtime, operator: Actor, setup
) -> None:  # type: ignore[no-untyped-def]
    c, _ra = setup
    card = f.active_card(rt, operator, "ORGA")
    url = f"/ra/persons/{card.user_id}"
    r = w.post(c, f"{url}/methods/totp", label="Work phone")
    assert r.status_code == 303
    confirm = r.headers["location"]
    page = c.get(confirm).text
    assert 'src="data:image/svg+xml' in page
    key = page.split('id="totp-key">')[1].split("<")[0].replace(" ", "")
    with rt.db() as s:
        assoc = s.scalar(
            select(Association).where(
                Association.method == "totp", Association.card_id == card.card_id
            )
        )
        assert assoc is not None
        assert assoc.status == "pending"
    r = w.post(c, confirm, code="000000" if pyotp.TOTP(key).now() != "000000" else "111111")
    assert r.status_code == 422
    assert "not right" in r.text
    r = w.post(c, confirm, code=pyotp.TOTP(key).now())
    assert r.status_code == 303
    with rt.db() as s:
        assoc = s.get(Association, assoc.id)
        assert assoc is not None
        assert assoc.status == "active"
        assert assoc.counter == int(time.time() // 30) or assoc.counter > 0


def test_ad_and_hr_card_are_unique_per_organisation(rt: Runtime, operator: Actor, setup) -> None:  # type: ignore[no-untyped-def]
    c, _ra = setup
    one = f.active_card(rt, operator, "ORGA")
    two = f.active_card(rt, operator, "ORGA", forename="Dan")
    r = w.post(c, f"/ra/persons/{one.user_id}/methods/ad", account="ORGA\\alice")
    assert r.status_code == 303
    r = w.post(c, f"/ra/persons/{two.user_id}/methods/ad", account="orga\\ALICE")
    assert r.status_code == 409
    assert "already associated" in r.text
    assert 'value="orga\\ALICE"' in r.text
    r = w.post(
        c, f"/ra/persons/{one.user_id}/methods/hr-card", uid="04 a2 2b 1a c3 5e 80", label=""
    )
    assert r.status_code == 303
    r = w.post(
        c, f"/ra/persons/{two.user_id}/methods/hr-card", uid="04:A2:2B:1A:C3:5E:80", label=""
    )
    assert r.status_code == 409
    r = w.post(c, f"/ra/persons/{two.user_id}/methods/hr-card", uid="zz", label="")
    assert r.status_code == 422
    assert "hexadecimal" in r.text
    with rt.db() as s:
        hr = s.scalar(select(Association).where(Association.method == "hr_card"))
        assert hr is not None
        assert hr.lookup_key == "04A22B1AC35E80"
    page = c.get(f"/ra/persons/{one.user_id}/methods/{hr.id}/remove")
    assert page.status_code == 200
    r = w.post(c, f"/ra/persons/{one.user_id}/methods/{hr.id}/remove")
    assert r.status_code == 422  # not confirmed
    r = w.post(c, f"/ra/persons/{one.user_id}/methods/{hr.id}/remove", confirm="yes")
    assert r.status_code == 303
    with rt.db() as s:
        assert s.get(Association, hr.id) is None


def test_lock_unlock_sends_a_reset_link_and_revoke(rt: Runtime, operator: Actor, setup) -> None:  # type: ignore[no-untyped-def]
    c, _ra = setup
    card = f.active_card(rt, operator, "ORGA")
    url = f"/ra/persons/{card.user_id}/card"
    r = w.post(c, f"{url}/lock", reason="")
    assert r.status_code == 422
    assert "Give a reason" in r.text
    assert w.post(c, f"{url}/lock", reason="Lost badge").status_code == 303
    assert _card(rt, card.serial).status == "locked"
    assert w.post(c, f"{url}/unlock", reason="Found it").status_code == 303
    unlocked = _card(rt, card.serial)
    assert unlocked.status == "active"
    with rt.db() as s:
        link = s.scalar(select(Link).where(Link.card_id == card.card_id, Link.purpose == "reset"))
        note = s.scalar(select(Notification).where(Notification.card_id == card.card_id))
        assert link is not None
        assert note is not None
        assert note.template == "reset_requested"
        assert "link" not in note.context  # sealed, not stored in clear
        ctx = links.message_context(rt, note)
        token = ctx["link"].rsplit("/", 1)[1]
        assert links.token_hash(token) == link.token_hash
    assert w.post(c, f"{url}/revoke", reason="Left the trust").status_code == 303
    assert _card(rt, card.serial).status == "revoked"
    page = c.get(f"/ra/audit?card={card.serial}").text
    for reason in ("Lost badge", "Found it", "Left the trust"):
        assert reason in page


def test_invitation_adds_a_slot_opened_by_link_and_sms_code(
    rt: Runtime, operator: Actor, setup
) -> None:  # type: ignore[no-untyped-def]
    c, _ra = setup
    card = f.issued_card(rt, operator, "ORGA")
    url = f"/ra/persons/{card.user_id}/invite"
    r = w.post(c, url, email="erin@example.org", phone="", issuance_passcode=f.ISSUANCE_PASSCODE)
    assert r.status_code == 422
    r = w.post(
        c, url, email="erin@example.org", phone="07700 900123", issuance_passcode="wrong-one"
    )
    assert r.status_code == 422
    assert "attempts left" in r.text
    r = w.post(
        c,
        url,
        email="erin@example.org",
        phone="07700 900123",
        issuance_passcode=f.ISSUANCE_PASSCODE,
    )
    assert r.status_code == 303, r.text
    stored = _card(rt, card.serial)
    assert stored.status == "enrolled"
    with rt.db() as s:
        notes = {
            n.channel: n
            for n in s.scalars(select(Notification).where(Notification.card_id == card.card_id))
        }
    token = links.message_context(rt, notes["email"])["link"].rsplit("/", 1)[1]
    code = links.message_context(rt, notes["sms"])["code"]
    record = open_record(rt.master_key, stored)
    dek = open_invitation_slot(record, links.token_bytes(token), code)
    assert len(dek) == 32
    with pytest.raises(Exception, match="does not open"):
        open_invitation_slot(
            record, links.token_bytes(token), "000000" if code != "000000" else "111111"
        )
    # a full enrolment at the desk answers the invitation: slot gone, link revoked
    r = w.post(
        c,
        f"/ra/persons/{card.user_id}/enrol",
        email="erin@example.org",
        phone="07700 900123",
        issuance_passcode=f.ISSUANCE_PASSCODE,
        passcode=f.STRONG_PASSCODE,
        passcode_confirm=f.STRONG_PASSCODE,
        **{f"question{n}": q for n, q in enumerate(rt.settings.security_questions[:3], 1)},
        **{f"answer{n}": ans for n, ans in enumerate(f.ANSWERS, 1)},
    )
    assert r.status_code == 303, r.text
    enrolled = _card(rt, card.serial)
    assert enrolled.status == "active"
    assert "invitation" not in {s.name for s in open_record(rt.master_key, enrolled).slots}
    with rt.db() as s:
        link = s.scalar(select(Link).where(Link.card_id == card.card_id))
        assert link is not None
        assert link.revoked_at is not None


def test_audit_filters_and_csv_export(rt: Runtime, operator: Actor, setup) -> None:  # type: ignore[no-untyped-def]
    c, _ra = setup
    card = f.active_card(rt, operator, "ORGA")
    w.post(c, f"/ra/persons/{card.user_id}/card/lock", reason='=HYPERLINK("x")')
    page = c.get("/ra/audit", params={"action": "card.", "outcome": "success"})
    assert page.status_code == 200
    assert "card.locked" in page.text
    assert "auth.passcode" not in page.text
    bad = c.get("/ra/audit", params={"date_from": "yesterday"})
    assert bad.status_code == 422
    assert "Enter a date" in bad.text
    export = c.get("/ra/audit.csv", params={"card": card.serial})
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    locked = [r for r in rows if r["action"] == "card.locked"]
    assert locked
    assert locked[0]["reason"].startswith("'=")  # formula neutralised


def test_sensitive_actions_need_a_recent_sign_in(rt: Runtime, operator: Actor, setup) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    c, ra = setup
    card = f.active_card(rt, operator, "ORGA")
    real_clock = rt.clock
    rt.clock = lambda: real_clock() + timedelta(minutes=11)
    try:
        r = c.get(f"/ra/persons/{card.user_id}/card/lock")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/ra/reauth?next=")
        r = w.post(
            c,
            "/ra/reauth",
            page=r.headers["location"],
            next=f"/ra/persons/{card.user_id}/card/lock",
            passcode=f.STRONG_PASSCODE,
        )
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/ra/reauth/code"
        r = w.post(c, "/ra/reauth/code", code=w.fresh_code(ra, shift=660))
        assert r.status_code == 303, r.text
        assert r.headers["location"] == f"/ra/persons/{card.user_id}/card/lock"
        assert c.get(f"/ra/persons/{card.user_id}/card/lock").status_code == 200
    finally:
        rt.clock = real_clock


def test_logout_ends_the_card_session(rt: Runtime, operator: Actor, setup) -> None:  # type: ignore[no-untyped-def]
    c, _ra = setup
    assert c.get("/ra/persons").status_code == 200
    r = w.post(c, "/ra/logout", page="/ra/persons")
    assert r.status_code == 303
    r = c.get("/ra/persons")
    assert r.status_code == 303
    assert r.headers["location"] == "/ra"
