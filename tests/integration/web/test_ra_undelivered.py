"""The vRA Manager's undelivered messages over HTTP, on SQLite and PostgreSQL: messages that
failed for good through the real outbox and dispatcher (a real SMTP server refusing the
recipient), seen by their own organisation's RA only and never with their link or code."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from tests.support import auth as a
from tests.support import factories as f
from tests.support import portal as p
from tests.support import ra_web as w
from tests.support.notify_servers import SmtpServer

from cardvault.notify.outbox import MemoryOutbox
from cardvault.notify.ports import DeliveryFailed
from cardvault.notify.templates import EmailTemplate
from cardvault.services.notifications import outbox as notifications
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card

PAGE = "/ra/notifications/failed"
GONE = "gone@example.org"
TOKEN = "S3cr3tR3s3tT0k3nThatMustNeverBeShownToAnRA1"
LINK = f"https://cardvault.example/portal/reset/{TOKEN}"
CODE = "904173"
EMPTY = "No undelivered messages."


def _reset_link_email(rt: Runtime, card_id: str) -> str:
    """A reset-link email to the holder, queued as the services queue it."""
    with transaction(rt.db) as s:
        card = s.get(Card, card_id)
        assert card is not None
        nid = notifications.to_holder(
            s,
            rt,
            card,
            EmailTemplate.RESET_REQUESTED,
            context={"valid_minutes": 30},
            secrets={"link": LINK},
        )
    assert nid is not None
    return nid


def _invitation_code_sms(rt: Runtime, card_id: str) -> None:
    with transaction(rt.db) as s:
        card = s.get(Card, card_id)
        assert card is not None
        notifications.invitation_code_sms(
            s,
            rt,
            card,
            phone="07700 900123",
            code=CODE,
            valid_minutes=30,
            expires_at=rt.clock() + timedelta(minutes=30),
        )


def _signed_in(rt: Runtime, ra: w.RaUser) -> TestClient:
    c = w.client(rt)
    w.sign_in(c, ra)
    return c


def test_a_failed_email_is_shown_to_its_organisations_ra_with_its_error(
    rt: Runtime, operator: Actor, smtp_server: SmtpServer
) -> None:
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    victim = f.active_card(rt, operator, "ORGA", forename="Victor", surname="Victim", email=GONE)
    smtp_server.mailbox.refuse_rcpt[GONE] = "550 5.1.1 No such user"
    _reset_link_email(rt, victim.card_id)
    assert p.smtp_dispatcher(rt, smtp_server.port).drain().failed == 1

    r = _signed_in(rt, ra).get(PAGE)

    assert r.status_code == 200
    page = r.text
    assert "Link to reset the passcode" in page
    assert GONE in page
    assert "The mail server refused the recipient." in page
    assert f'href="/ra/persons/{victim.user_id}">Victor Victim</a>' in page
    assert victim.serial in page
    assert EMPTY not in page
    assert TOKEN not in page
    assert 'href="/ra/notifications/failed" aria-current="page"' in page


def test_a_failed_text_message_never_shows_its_code(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    invitee = f.issued_card(rt, operator, "ORGA", forename="Ivy")
    _invitation_code_sms(rt, invitee.card_id)
    box = MemoryOutbox(failures=[DeliveryFailed("The number is not in service.", permanent=True)])
    assert p.memory_dispatcher(rt, box).drain().failed == 1

    page = _signed_in(rt, ra).get(PAGE).text

    assert "Text message" in page
    assert "Enrolment code for an invitation" in page
    assert "+447700900123" in page
    assert "The number is not in service." in page
    assert CODE not in page


def test_another_organisations_ra_does_not_see_the_message(
    rt: Runtime, operator: Actor, smtp_server: SmtpServer
) -> None:
    a.open_org(rt, operator, "ORGA")
    a.open_org(rt, operator, "ORGB")
    ra_b = w.ra_user(rt, operator, "ORGB", forename="Brenda")
    victim = f.active_card(rt, operator, "ORGA", forename="Victor", surname="Victim", email=GONE)
    smtp_server.mailbox.refuse_rcpt[GONE] = "550 5.1.1 No such user"
    _reset_link_email(rt, victim.card_id)
    assert p.smtp_dispatcher(rt, smtp_server.port).drain().failed == 1

    r = _signed_in(rt, ra_b).get(PAGE)

    assert r.status_code == 200
    assert EMPTY in r.text
    for leak in ("Victor", GONE, victim.serial, "refused"):
        assert leak not in r.text


def test_without_undelivered_messages_the_page_says_so(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    victim = f.active_card(rt, operator, "ORGA", forename="Victor", email=GONE)
    _reset_link_email(rt, victim.card_id)  # queued, not failed: not listed

    page = _signed_in(rt, ra).get(PAGE).text

    assert EMPTY in page
    assert GONE not in page


def test_only_the_newest_are_shown_and_the_page_says_so(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA")
    victim = f.active_card(rt, operator, "ORGA", forename="Victor", email=GONE)
    for _ in range(201):
        _reset_link_email(rt, victim.card_id)
    box = MemoryOutbox(failures=[DeliveryFailed("No such mailbox.", permanent=True)] * 201)
    assert p.memory_dispatcher(rt, box).drain().failed == 201

    page = _signed_in(rt, ra).get(PAGE).text

    assert page.count("No such mailbox.") == 200
    assert "Only the newest 200 undelivered messages are shown" in page


def test_an_auditor_is_refused_and_not_shown_the_link(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    auditor = w.ra_user(rt, operator, "ORGA", role="auditor")
    c = _signed_in(rt, auditor)

    assert c.get(PAGE).status_code == 403
    assert PAGE not in c.get("/ra/audit").text
