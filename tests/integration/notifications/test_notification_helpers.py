"""The helpers other features call inside their transactions: each queues the right email."""

from __future__ import annotations

from tests.support import factories as f
from tests.support import portal as p

from cardvault.notify.outbox import MemoryOutbox
from cardvault.services.directory import registry as directory
from cardvault.services.notifications import outbox as notifications
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card, Organisation, Person


def test_device_and_key_changes_are_told_to_the_holder(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    card = f.active_card(rt, operator, forename="Ann", email="ann@example.org")
    with transaction(rt.db) as s:
        row = s.get(Card, card.card_id)
        assert row is not None
        notifications.device_added(s, rt, row, "Ann's phone")
        notifications.device_removed(s, rt, row, "Ann's phone")
        notifications.security_key_added(s, rt, row, "YubiKey 5")
        notifications.security_key_removed(s, rt, row, "YubiKey 5")
    box = MemoryOutbox()
    assert p.memory_dispatcher(rt, box).drain().sent == 4
    subjects = sorted(m.subject for m in box.emails)
    assert subjects == [
        "A device was added to your cardvault card",
        "A device was removed from your cardvault card",
        "A security key was added to your cardvault card",
        "A security key was removed from your cardvault card",
    ]
    assert {m.to for m in box.emails} == {"ann@example.org"}
    assert all("Hello Ann" in m.text for m in box.emails)
    assert any("Ann's phone" in m.text for m in box.emails)


def test_this_wasnt_me_alerts_the_organisations_ra_managers_and_agents(
    rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator)
    holder = f.active_card(rt, operator, forename="Ann", surname="Holder")
    agent = f.person(rt, operator, "ORG1", forename="Rita", email="rita@example.org")
    auditor = f.person(rt, operator, "ORG1", forename="Otto", email="otto@example.org")
    directory.grant_role(rt, operator, user_id=agent, org_code="ORG1", role="ra_agent")
    directory.grant_role(rt, operator, user_id=auditor, org_code="ORG1", role="auditor")
    with transaction(rt.db) as s:
        card = s.get(Card, holder.card_id)
        assert card is not None
        org = s.get(Organisation, card.organisation_id)
        assert org is not None
        queued = notifications.not_me(s, rt, card, org, "Ann's phone")
    assert len(queued) == 1
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    (alert,) = box.emails
    assert alert.to == "rita@example.org"
    assert "Ann Holder" in alert.text
    assert f"/ra/persons/{holder.user_id}" in alert.text


def test_a_holder_without_an_email_address_gets_nothing(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    card = f.active_card(rt, operator)
    with transaction(rt.db) as s:
        row = s.get(Card, card.card_id)
        assert row is not None
        person = s.get(Person, row.person_id)
        assert person is not None
        person.email = None
        s.flush()
        assert notifications.passcode_changed(s, rt, row) is None
