"""The vRA Manager's audit log in words, on SQLite and PostgreSQL: actors by name and role,
actions as phrases with their codes beside them, and nothing about other organisations."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import phones as ph
from tests.support import portal as p
from tests.support import ra_web as w

from cardvault.services.audit import display as audit_display
from cardvault.services.audit import trail as audit
from cardvault.services.devices import push
from cardvault.services.ra import audit as ra_audit
from cardvault.services.ra.actions import RaContext
from cardvault.services.signin.engine import Engine, LoginRequest
from cardvault.services.signin.push_continue import complete_push
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import AuditEvent, Card, Device, Organisation, Person

RAW_REF = re.compile(r"\b(ra|holder|device|cli):[0-9a-z-]{8,}")


def _events(rt: Runtime, action: str) -> list[AuditEvent]:
    with rt.db() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _person_id(rt: Runtime, user_id: str) -> str:
    with rt.db() as s:
        found = s.scalar(select(Person.id).where(Person.user_id == user_id))
        assert found is not None
        return found


def _org_id(rt: Runtime, code: str) -> str:
    with rt.db() as s:
        found = s.scalar(select(Organisation.id).where(Organisation.code == code))
        assert found is not None
        return found


def _push_sign_in(rt: Runtime, email: str, phone: ph.Phone) -> None:
    """The holder signs in at the PC and approves on the phone (the phone is the actor)."""
    engine = Engine(rt)
    login = LoginRequest(identifier_kind="email", identifier=email, passcode=f.STRONG_PASSCODE)
    txn = engine.login(a.client(), login).transaction_id
    started = push.start(rt, a.client(), txn)
    phone.respond(rt, started.challenge_id, f"{started.number:02d}")
    complete_push(engine, a.client(), txn, started.challenge_id)


def test_the_ras_choice_of_role_and_sign_out_are_recorded_as_the_ra(
    rt: Runtime, operator: Actor
) -> None:
    """They used to be recorded as ``anonymous``: the browser's request, not the RA."""
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA", role="ra_agent")
    c = w.client(rt)
    w.sign_in(c, ra)
    assert w.post(c, "/ra/logout", page="/ra/persons").status_code == 303
    ra_ref = f"ra:{_person_id(rt, ra.holder.card.user_id)}"
    assert [e.actor for e in _events(rt, "ra.role_selected")] == [ra_ref]
    assert [e.actor for e in _events(rt, "session.closed")] == [ra_ref]


def test_the_audit_log_reads_like_english(
    rt: Runtime, operator: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_display, "BATCH", 1)  # names are looked up in slices
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA", role="ra_agent", forename="Rana", surname="Issuer")
    alice = a.holder(rt, operator, "ORGA", forename="Alice", surname="Smith")
    phone = ph.pair(rt, operator, alice.card.serial, "ORGA")
    _push_sign_in(rt, alice.email, phone)
    p.lock_by_email(Engine(rt), alice.email)  # three wrong passcodes
    c = w.client(rt)
    w.sign_in(c, ra)

    page = c.get("/ra/audit").text
    assert "Rana Issuer (RA agent)" in page
    assert "Alice Smith (holder)" in page
    assert "Operator (command line)" in page
    assert "Test phone (phone of Alice Smith)" in page
    assert "Someone not signed in" in page  # the wrong passcodes: nobody had signed in
    for phrase in (
        "Started working in the vRA Manager",
        "Signed in with push",
        "Sign-in approved on the phone",
        "Wrong passcode at sign-in",
        "Card locked: 3 wrong passcodes",
        "Phone paired",
    ):
        assert phrase in page, phrase
    # the code stays on the page, beside its phrase and as the cell's title
    assert '<code class="event-code">ra.<wbr>role_<wbr>selected</code>' in page
    assert 'title="Action code: card.locked"' in page
    assert not RAW_REF.search(page)
    assert "anonymous" not in page

    alice_ref = f"holder:{_person_id(rt, alice.card.user_id)}"
    assert [e.actor for e in _events(rt, "device.paired")] == [alice_ref]  # passcode typed

    person_page = c.get(f"/ra/persons/{alice.card.user_id}").text
    assert "Card locked: 3 wrong passcodes" in person_page
    assert "Test phone (phone of Alice Smith)" in person_page


def test_the_csv_keeps_the_codes_beside_the_words(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    ra = w.ra_user(rt, operator, "ORGA", forename="Rana", surname="Issuer")
    c = w.client(rt)
    w.sign_in(c, ra)
    export = c.get("/ra/audit.csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert list(rows[0]) == list(ra_audit.CSV_HEADER)
    selected = next(r for r in rows if r["action"] == "ra.role_selected")
    assert selected["what_happened"] == "Started working in the vRA Manager"
    assert selected["actor"] == f"ra:{_person_id(rt, ra.holder.card.user_id)}"
    assert selected["who_acted"] == "Rana Issuer (RA manager)"
    created = next(r for r in rows if r["action"] == "organisation.created")
    assert created["actor"] == "cli:tester"
    assert created["who_acted"] == "Operator (command line)"


def test_people_devices_and_cards_of_another_organisation_stay_unnamed(
    rt: Runtime, operator: Actor
) -> None:
    """An event of ORGA's chain that names ORGB's people (as a cross-organisation use
    would) shows them by kind only: the names are resolved within ORGA."""
    a.open_org(rt, operator, "ORGA")
    a.open_org(rt, operator, "ORGB")
    bob = a.holder(rt, operator, "ORGB", forename="Bobby", surname="Elsewhere")
    phone = ph.pair(rt, operator, bob.card.serial, "ORGB")
    staff = w.ra_user(rt, operator, "ORGB", forename="Olga", surname="Otherorg")
    bob_id = _person_id(rt, bob.card.user_id)
    org_a = _org_id(rt, "ORGA")
    with rt.db() as s:
        card_id = s.scalar(select(Card.id).where(Card.serial == bob.card.serial))
        device = s.get(Device, phone.device_id)
        assert device is not None
    for ref in (
        f"holder:{bob_id}",
        f"ra:{_person_id(rt, staff.holder.card.user_id)}",
        f"device:{phone.device_id}",
    ):
        with transaction(rt.db) as s:
            audit.record(
                s,
                rt,
                Actor(ref=ref, display="x"),
                action="card.signed",
                organisation_id=org_a,
                person_id=bob_id,
                card_id=card_id,
            )
    ctx = RaContext(actor=operator, organisation_id=org_a, organisation_code="ORGA", role="auditor")
    shown = [e for e in ra_audit.search(rt, ctx, ra_audit.AuditFilter()).events if e.seq > 2]
    assert {e.actor for e in shown} == {
        audit_display.OUTSIDER,
        audit_display.UNKNOWN_DEVICE,
    }
    assert {e.person for e in shown} == {audit_display.OUTSIDER}
    assert {e.card for e in shown} == {""}
    text = "".join(ra_audit.export_csv(rt, ctx, ra_audit.AuditFilter()))
    for secret in ("Bobby", "Elsewhere", "Olga", device.name, bob.card.serial, bob.card.user_id):
        assert secret not in text


def test_every_kind_of_actor_has_a_name(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    org_a = _org_id(rt, "ORGA")
    refs = {
        "system": "cardvault (automatic)",
        "anonymous": "Someone not signed in",
        "holder:portal": "Card holder (self-service portal)",
        "cli:root": "Operator (command line)",
        f"ra:{'0' * 36}": audit_display.OUTSIDER,  # nobody of ORGA
        f"device:{'0' * 36}": audit_display.UNKNOWN_DEVICE,
        "robot:r2d2": "Other (robot)",  # a kind this version does not know
    }
    for ref in refs:
        with transaction(rt.db) as s:
            audit.record(
                s, rt, Actor(ref=ref, display="x"), action="card.signed", organisation_id=org_a
            )
    ctx = RaContext(actor=operator, organisation_id=org_a, organisation_code="ORGA", role="auditor")
    shown = {e.actor_ref: e.actor for e in ra_audit.search(rt, ctx, ra_audit.AuditFilter()).events}
    assert {ref: shown[ref] for ref in refs} == refs
