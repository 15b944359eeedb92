"""RA managers run their organisation through the vRA Manager (issue 19): people, CSV import,
another organisation's person, leavers and erasure, settings, role grants, card approvals.
Each through the real pages, on SQLite and PostgreSQL, with the bad inputs the issue names."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.domain.audit_actions import AuditAction
from cardvault.services.directory import erasure
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Card, Membership, Person

HEADER = "user_id,forename,surname,email,mobile\n"


@pytest.fixture
def orgs(rt: Runtime, operator: Actor) -> dict[str, Any]:
    a.open_org(rt, operator, "ORGA")
    a.open_org(rt, operator, "ORGB")
    manager = w.ra_user(rt, operator, "ORGA", forename="Mandy")
    c = w.client(rt)
    w.sign_in(c, manager)
    return {"manager": manager, "client": c}


def _people(rt: Runtime) -> int:
    with rt.db() as s:
        return int(s.scalar(select(func.count()).select_from(Person)) or 0)


def _upload(c: Any, data: bytes, mode: str) -> Any:
    token = w.csrf(c.get("/ra/people/import").text)
    return c.post(
        "/ra/people/import",
        data={"csrf_token": token, "mode": mode},
        files={"file": ("people.csv", data, "text/csv")},
    )


def test_an_ra_creates_a_person_and_finds_them(rt: Runtime, orgs: dict[str, Any]) -> None:
    c = orgs["client"]
    r = w.post(c, "/ra/people/new", user_id="555 000 900 001", forename="Nora",
               surname="Newcomer", email="nora@example.org", mobile="07700 900123")  # fmt: skip
    assert r.status_code == 303, r.text[:800]
    assert r.headers["location"] == "/ra/persons/555000900001"
    for q in ("Newcomer", "nora@example.org", "555000900001"):
        assert "Nora Newcomer" in c.get(f"/ra/persons?q={q}").text, q
    r = w.post(c, "/ra/people/new", page="/ra/people/new", user_id="555000900001",
               forename="Nora", surname="Again", email="", mobile="")  # fmt: skip
    assert r.status_code == 409
    assert "already has user id 555000900001" in r.text
    assert 'class="error-summary' in r.text


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("forename", "=cmd|' /C calc'!A0", "formula"),
        ("surname", "@SUM(A1)", "formula"),
        ("user_id", "12", "user id"),
        ("email", "not-an-address", "email"),
    ],
)
def test_a_bad_field_is_refused_with_its_error_and_nothing_is_written(
    rt: Runtime, orgs: dict[str, Any], field: str, value: str, words: str
) -> None:
    fields = {"user_id": "555000900002", "forename": "Fay", "surname": "Field",
              "email": "fay@example.org", "mobile": ""}  # fmt: skip
    before = _people(rt)
    r = w.post(orgs["client"], "/ra/people/new", **{**fields, field: value})
    assert r.status_code == 422, r.text[:500]
    assert f'href="#f-{field}"' in r.text
    assert words in r.text.lower()
    assert _people(rt) == before


def test_a_csv_dry_run_lists_every_bad_row_and_writes_nothing(
    rt: Runtime, operator: Actor, orgs: dict[str, Any]
) -> None:
    otto = f.person(rt, operator, "ORGB", forename="Otto", surname="Other")
    rows = (
        "555000900010,Gina,Good,gina@example.org,+44 7700 900010\n"
        "555000900011,=cmd,Bad,,\n"
        "555000900012,Dee,Dup,,\n"
        "555000900012,Dee,Dup-again,,\n"
        f"{otto},Otto,Other,,\n"
        "555000900013,Minnie,-1+2,,\n"
    )
    data = (HEADER + rows).encode()
    before = _people(rt)
    r = _upload(orgs["client"], data, "check")
    assert r.status_code == 200, r.text[:800]
    assert "6 rows checked: 2 good, 4 with problems" in r.text
    assert "which a spreadsheet would run as a formula" in r.text
    assert "is also on line 4" in r.text
    assert "belongs to a person of another organisation" in r.text
    r = _upload(orgs["client"], data, "all")
    assert r.status_code == 422
    assert "4 of 6 rows have problems; nothing was imported." in r.text
    assert _people(rt) == before
    r = _upload(orgs["client"], data, "good")
    assert r.status_code == 303, r.text[:800]
    assert _people(rt) == before + 2
    assert "Gina Good" in orgs["client"].get("/ra/persons?q=gina").text


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ((HEADER + "555000900020,Zoë,Latin,,\n").encode("latin-1"), "not UTF-8"),
        (b"", "The file is empty"),
        (b"name,email\nx,y\n", "lacks the columns user_id, forename, surname, mobile"),
    ],
)
def test_a_bad_file_is_refused_whole(
    rt: Runtime, orgs: dict[str, Any], data: bytes, words: str
) -> None:
    before = _people(rt)
    for mode in ("check", "good"):
        r = _upload(orgs["client"], data, mode)
        assert r.status_code == 422
        assert words in r.text
    assert _people(rt) == before


def test_a_person_of_another_organisation_is_added_and_keeps_one_card(
    rt: Runtime, operator: Actor, orgs: dict[str, Any]
) -> None:
    other = f.active_card(rt, operator, "ORGB", forename="Bea", surname="Both",
                          email="bea@example.org")  # fmt: skip
    c = orgs["client"]
    r = w.post(c, "/ra/people/add", user_id=other.user_id, email="someone@example.org")
    assert r.status_code == 404
    r = w.post(c, "/ra/people/add", user_id=other.user_id, email="bea@example.org")
    assert r.status_code == 303, r.text[:500]
    page = c.get(f"/ra/persons/{other.user_id}").text
    assert other.serial in page
    with rt.db() as s:
        assert s.scalar(select(func.count()).select_from(Card).where(
            Card.person_id == select(Person.id).where(Person.user_id == other.user_id)
            .scalar_subquery())) == 1  # fmt: skip


def test_a_leaver_of_one_organisation_keeps_the_card_elsewhere_then_of_the_last_loses_it(
    rt: Runtime, operator: Actor, orgs: dict[str, Any]
) -> None:
    card = f.active_card(rt, operator, "ORGA", forename="Lee", surname="Leaver")
    directory.add_membership(rt, operator, card.user_id, "ORGB")
    c = orgs["client"]
    url = f"/ra/persons/{card.user_id}/leave"
    r = w.post(c, url, reason="moved")
    assert r.status_code == 422
    assert "Confirm that Lee Leaver has left" in r.text
    r = w.post(c, url, reason="moved", confirm="yes")
    assert r.status_code == 303, r.text[:500]
    with rt.db() as s:
        row = s.scalar(select(Card).where(Card.serial == card.serial))
        assert row is not None
        assert row.status == "active"
    assert c.get(f"/ra/persons/{card.user_id}").status_code == 404
    ra_b = w.ra_user(rt, operator, "ORGB", forename="Bob")
    cb = w.client(rt)
    w.sign_in(cb, ra_b)
    r = w.post(cb, url, reason="retired", confirm="yes")
    assert r.status_code == 303, r.text[:500]
    with rt.db() as s:
        row = s.scalar(select(Card).where(Card.serial == card.serial))
        assert row is not None
        assert row.status == "revoked"
        person = s.scalar(select(Person).where(Person.user_id == card.user_id))
        assert person is not None
        assert person.left_at is not None
        person_id = person.id
        left = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.person_id == person_id, AuditEvent.action == AuditAction.PERSON_LEFT)
        )
        assert left == 2
    assert erasure.erase_expired(rt) == 0  # retention not over
    later = rt.clock() + timedelta(days=366)
    clock, rt.clock = rt.clock, lambda: later
    try:
        assert erasure.erase_expired(rt) == 1
    finally:
        rt.clock = clock
    with rt.db() as s:
        person = s.get(Person, person_id)
        assert person is not None
        assert (person.email, person.phone, person.common_name) == (None, None, "Erased person")
        assert person != card.user_id
        assert s.scalar(select(func.count()).select_from(Membership).where(
            Membership.person_id == person_id)) == 0  # fmt: skip
        kept = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.person_id == person_id))  # fmt: skip
        assert kept
        assert kept > 3


def test_settings_are_changed_audited_with_old_and_new_and_checked(
    rt: Runtime, orgs: dict[str, Any]
) -> None:
    c = orgs["client"]
    page = c.get("/ra/organisation/settings")
    assert page.status_code == 200
    fields = {
        "session_absolute_minutes": "720", "session_idle_minutes": "60",
        "reset_link_minutes": "15", "card_pin_min_length": "8", "certificate_days": "1095",
        "renew_days": "30", "leaver_retention_days": "90", "route_email": "yes",
        "recovery_requires_second_factor": "yes", "factor_totp": "yes",
    }  # fmt: skip
    r = w.post(c, "/ra/organisation/settings", **{**fields, "session_idle_minutes": "900",
                                                  "reset_link_minutes": "soon"})  # fmt: skip
    assert r.status_code == 422
    assert "Reset links last: enter a whole number of minutes from 5 to 1440." in r.text
    r = w.post(c, "/ra/organisation/settings", **{**fields, "session_idle_minutes": "900"})
    assert r.status_code == 422
    assert "must not be longer than the longest session" in r.text
    r = w.post(c, "/ra/organisation/settings", **fields)
    assert r.status_code == 303, r.text[:800]
    with rt.db() as s:
        event = s.scalar(select(AuditEvent).where(
            AuditEvent.action == AuditAction.ORGANISATION_POLICY_CHANGED
        ).order_by(AuditEvent.seq.desc()))  # fmt: skip
        assert event is not None
        assert event.details["changes"]["reset_link_minutes"] == {"old": 30, "new": 15}
        assert event.details["changes"]["allowed_methods"]["new"] == ["email"]


def test_a_role_grant_waits_for_a_second_manager_who_is_not_the_requester(
    rt: Runtime, operator: Actor, orgs: dict[str, Any]
) -> None:
    directory.update_policy(rt, operator, "ORGA", {"role_grants_need_approval": True})
    other_manager = w.ra_user(rt, operator, "ORGA", forename="Olga")
    newbie = f.person(rt, operator, "ORGA", forename="Nick", surname="New")
    c = orgs["client"]
    r = w.post(c, "/ra/roles", user_id=newbie, role="ra_agent")
    assert r.status_code == 303, r.text[:500]
    page = c.get("/ra/roles").text
    assert "You asked; another RA manager decides" in page
    assert "/ra/roles/requests/" not in page  # the requester is offered no button
    c2 = w.client(rt)
    w.sign_in(c2, other_manager)
    page = c2.get("/ra/roles").text
    request_id = page.split("/ra/roles/requests/")[1].split("/")[0]
    token = w.csrf(c.get("/ra/roles").text)
    r = c.post(f"/ra/roles/requests/{request_id}/approve", data={"csrf_token": token})
    assert r.status_code == 403
    assert "another RA manager must approve it" in r.text
    assert "ra_agent" not in str(directory.show_person(rt, newbie).roles)
    token = w.csrf(page)
    r = c2.post(f"/ra/roles/requests/{request_id}/approve", data={"csrf_token": token})
    assert r.status_code == 303, r.text[:500]
    assert "ra_agent" in str(directory.show_person(rt, newbie).roles)
    r = c2.post(f"/ra/roles/requests/{request_id}/approve", data={"csrf_token": token})
    assert r.status_code == 404


def test_a_role_taken_away_is_gone_and_cannot_be_taken_away_twice(
    rt: Runtime, operator: Actor, orgs: dict[str, Any]
) -> None:
    newbie = f.person(rt, operator, "ORGA", forename="Tina", surname="Taken")
    c = orgs["client"]
    r = w.post(c, "/ra/roles", user_id=newbie, role="ra_agent")
    assert r.status_code == 303, r.text[:500]
    assert "ra_agent" in str(directory.show_person(rt, newbie).roles)
    r = w.post(c, "/ra/roles/take-away", page="/ra/roles", user_id=newbie, role="ra_agent")
    assert r.status_code == 303, r.text[:500]
    assert "ra_agent" not in str(directory.show_person(rt, newbie).roles)
    r = w.post(c, "/ra/roles/take-away", page="/ra/roles", user_id=newbie, role="ra_agent")
    assert r.status_code == 404
    assert "does not have the role" in r.text


def test_a_sponsor_approves_and_only_then_an_agent_may_issue(
    rt: Runtime, operator: Actor, orgs: dict[str, Any]
) -> None:
    directory.update_policy(rt, operator, "ORGA", {"cards_need_sponsor_approval": True})
    person = f.person(rt, operator, "ORGA", forename="Sam", surname="Sponsored")
    c = orgs["client"]
    url = f"/ra/persons/{person}/issue"
    r = w.post(c, url, issuance_passcode="Issue-1234", confirm="Issue-1234")
    assert r.status_code == 403
    assert "approval before a card is issued" in r.text
    sponsor = w.ra_user(rt, operator, "ORGA", role="sponsor", forename="Spencer")
    cs = w.client(rt)
    w.sign_in(cs, sponsor)
    page = cs.get("/ra/approvals")
    assert page.status_code == 200
    assert "Sam Sponsored" in page.text
    r = w.post(cs, f"/ra/approvals/{person}", page="/ra/approvals")
    assert r.status_code == 303, r.text[:500]
    assert cs.get(f"/ra/persons/{person}").status_code == 403
    r = w.post(c, url, issuance_passcode="Issue-1234", confirm="Issue-1234")
    assert r.status_code == 303, r.text[:500]


def test_the_ra_api_creates_checks_and_imports_people(
    rt: Runtime, operator: Actor, orgs: dict[str, Any]
) -> None:
    c = w.client(rt)
    auth = {"Authorization": f"Bearer {w.api_token(rt, orgs['manager'])}"}
    person = {"user_id": "555000900050", "forename": "Api", "surname": "Person"}
    r = c.post("/api/v1/ra/people", headers=auth, json=person)
    assert r.status_code == 201, r.text
    r = c.post("/api/v1/ra/people", headers=auth, json={**person, "forename": "+cmd"})
    assert r.status_code == 422
    assert "formula" in r.json()["detail"]
    bad = (HEADER + "555000900052,Zoë,Latin,,\n").encode("latin-1")
    before = _people(rt)
    r = c.post("/api/v1/ra/people/import?mode=good", headers=auth, content=bad)
    assert r.status_code == 422
    assert "not UTF-8" in r.json()["detail"]
    rows = (HEADER + "555000900053,Ok,Row,,\n555000900050,Api,Again,,\n").encode()
    r = c.post("/api/v1/ra/people/import", headers=auth, content=rows)
    assert r.status_code == 200
    assert [row["problems"] == [] for row in r.json()["rows"]] == [True, False]
    r = c.post("/api/v1/ra/people/import?mode=all", headers=auth, content=rows)
    assert r.status_code == 422
    assert _people(rt) == before
    r = c.post("/api/v1/ra/people/import?mode=good", headers=auth, content=rows)
    assert r.status_code == 200
    assert r.json()["created"] == ["555000900053"]
    assert _people(rt) == before + 1


def test_a_file_larger_than_an_ordinary_form_is_checked_and_a_huge_one_refused(
    rt: Runtime, orgs: dict[str, Any]
) -> None:
    rows = "".join(
        f"555001{n:06d},Person{n},Many,p{n}@example.org,+44 7700 9{n:05d}\n" for n in range(1500)
    )
    data = (HEADER + rows).encode()
    assert len(data) > rt.settings.max_body_bytes
    r = _upload(orgs["client"], data, "check")
    assert r.status_code == 200, r.text[:500]
    assert "1500 rows checked: 1500 good, 0 with problems" in r.text
    huge = HEADER.encode() + b"x" * (2 * 1024 * 1024 + 100 * 1024)
    r = _upload(orgs["client"], huge, "check")
    assert r.status_code == 413
    assert _people(rt) == 1  # the manager only
