"""Expiry by organisation policy (issue 17): the report (CLI and vRA Manager page) lists the
cards inside the renewal window, each holder is emailed once, and renewal takes the card
out of the report."""

from __future__ import annotations

from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w
from tests.support.cli import Cli

from cardvault.services.directory import registry
from cardvault.services.notifications import outbox
from cardvault.services.pki import expiry, renewal
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Notification


def test_the_expiry_report_the_reminder_and_renewal(rt: Runtime, operator: Actor, cli: Cli) -> None:
    a.open_org(rt, operator, "ORGA")
    registry.update_policy(rt, operator, "ORGA", {"certificate_days": 5, "renew_days": 2})
    soon = f.active_card(rt, operator, "ORGA", email="soon@example.org")
    registry.update_policy(rt, operator, "ORGA", {"certificate_days": 365, "renew_days": 30})
    later = f.active_card(rt, operator, "ORGA", email="later@example.org")

    listed = cli.run("card", "expiring", "--org", "orga", "--json").ok().json
    assert [c["serial"] for c in listed] == [soon.serial]
    assert listed[0]["days_left"] in (4, 5)
    assert listed[0]["holder_told_at"] is None
    assert cli.run("card", "expiring", "--org", "NOPE").returncode != 0

    assert expiry.remind(rt) == 1
    assert expiry.remind(rt) == 0  # once per certificate
    with rt.db() as session:
        notes = session.scalars(
            select(Notification).where(Notification.template == "certificate_expiring")
        ).all()
        assert [n.recipient for n in notes] == ["soon@example.org"]
        message = outbox.message_of(rt, notes[0])
    assert "cardvault-agent renew" in message.text  # type: ignore[union-attr]
    assert soon.serial in message.text  # type: ignore[union-attr]
    assert cli.run("--json", "card", "expiring", "--org", "ORGA").ok().json[0]["holder_told_at"]

    ra = w.ra_user(rt, operator, "ORGA")
    c = w.client(rt)
    w.sign_in(c, ra)
    page = c.get("/ra/expiring")
    assert page.status_code == 200
    assert soon.serial in page.text
    assert later.serial not in page.text
    assert "within 30 days" in page.text

    renewal.recertify(rt, operator, soon.serial)
    assert cli.run("--json", "card", "expiring", "--org", "ORGA").ok().json == []
    assert soon.serial not in c.get("/ra/expiring").text
