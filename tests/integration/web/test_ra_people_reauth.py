"""Adding people is a sensitive action (issue 19 review): the vRA Manager's "add a person",
the CSV import and "add a person of another organisation" ask the RA to confirm it is them
when the sign-in is older than 10 minutes, like every other sensitive action, and an RA who
signed in with a security key alone confirms with the key again. Nothing is written before."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Person

PAGES = ("/ra/people/new", "/ra/people/import", "/ra/people/add")
NEW = {"user_id": "555000900101", "forename": "Nora", "surname": "Newcomer",
       "email": "nora@example.org", "mobile": ""}  # fmt: skip
CSV = b"user_id,forename,surname,email,mobile\n555000900102,Cora,Csv,cora@example.org,\n"


@contextmanager
def _later(rt: Runtime) -> Iterator[None]:
    """The clock 11 minutes on: past the re-authentication limit."""
    real = rt.clock
    rt.clock = lambda: real() + timedelta(minutes=11)
    try:
        yield
    finally:
        rt.clock = real


def _people(rt: Runtime) -> int:
    with rt.db() as s:
        return int(s.scalar(select(func.count()).select_from(Person)) or 0)


def _sent(c: TestClient, page: str, token: str) -> tuple[dict[str, str], dict[str, object]]:
    """What each page's form posts, with a CSRF token read before the clock moved."""
    if page == "/ra/people/import":
        return {"csrf_token": token, "mode": "all"}, {"file": ("p.csv", CSV, "text/csv")}
    return {"csrf_token": token, "form_id": "f1", **NEW}, {}


@pytest.fixture
def manager(rt: Runtime, operator: Actor) -> tuple[TestClient, w.RaUser]:
    return w.signed_in_ra(rt, operator, forename="Mandy")


@pytest.mark.parametrize("page", PAGES)
def test_an_old_sign_in_is_sent_to_confirm_and_nothing_is_written(
    rt: Runtime, manager: tuple[TestClient, w.RaUser], page: str
) -> None:
    c, _user = manager
    token = w.csrf(c.get(page).text)  # fresh: the page opens
    before = _people(rt)
    with _later(rt):
        shown = c.get(page)
        assert (shown.status_code, shown.headers["location"]) == (303, f"/ra/reauth?next={page}")
        data, files = _sent(c, page, token)
        r = c.post(page, data=data, files=files or None)  # type: ignore[arg-type]
        assert r.status_code == 303
        assert r.headers["location"] == f"/ra/reauth?next={page}"
    assert _people(rt) == before


@pytest.mark.parametrize("page", ["/ra/people/new", "/ra/people/import"])
def test_after_confirming_with_passcode_and_code_the_person_is_added(
    rt: Runtime, manager: tuple[TestClient, w.RaUser], page: str
) -> None:
    c, user = manager
    before = _people(rt)
    with _later(rt):
        r = w.post(c, "/ra/reauth", page=f"/ra/reauth?next={page}", next=page,
                   passcode=f.STRONG_PASSCODE)  # fmt: skip
        assert (r.status_code, r.headers["location"]) == (303, "/ra/reauth/code")
        r = w.post(c, "/ra/reauth/code", code=w.fresh_code(user, 11 * 60))
        assert (r.status_code, r.headers["location"]) == (303, page)
        data, files = _sent(c, page, w.csrf(c.get(page).text))
        done = c.post(page, data=data, files=files or None)  # type: ignore[arg-type]
        assert done.status_code == 303, done.text[:800]
        assert done.headers["location"] != f"/ra/reauth?next={page}"
    assert _people(rt) == before + 1


def test_an_ra_who_signed_in_with_a_key_alone_confirms_with_the_key(
    rt: Runtime, operator: Actor
) -> None:
    user, device = w.key_ra(rt, operator, "ORGA")
    c = w.client(rt)
    w.key_sign_in(rt, c, device, user)
    before = _people(rt)
    with _later(rt):
        r = c.get("/ra/people/new")
        assert r.headers["location"] == "/ra/reauth?next=/ra/people/new"
        page = c.get(r.headers["location"]).text
        assert 'action="/ra/reauth/key"' in page
        assert 'name="identifier"' not in page  # none was typed at sign-in
        assert w.key_reauth(rt, c, device, "/ra/people/new") == "/ra/people/new"
        r = w.post(c, "/ra/people/new", **NEW)
        assert (r.status_code, r.headers["location"]) == (303, "/ra/persons/555000900101")
    assert _people(rt) == before + 1
