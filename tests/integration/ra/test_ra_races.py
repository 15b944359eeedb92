"""Races in running an organisation (issue 19), on SQLite and PostgreSQL: a waiting role
grant is decided once however many RA managers press at the same moment, and two RAs
adding the same person at once leave one person and a precise error, never a half-write."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import func, select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import ra_web as w

from cardvault.domain.audit_actions import AuditAction
from cardvault.errors import CardvaultError
from cardvault.services.directory import registry as directory
from cardvault.services.ra import people as ra_people
from cardvault.services.ra import roles as ra_roles
from cardvault.services.ra.actions import RaContext
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Organisation, Person, RaRoleGrant
from cardvault.web.errors import status_of


def _race(n: int, work: Callable[[int], object]) -> tuple[list[object], list[BaseException]]:
    barrier = threading.Barrier(n)
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            value = work(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(value)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results, errors


def _ctx(rt: Runtime, user: w.RaUser) -> RaContext:
    with rt.db() as s:
        org = s.scalar(select(Organisation).where(Organisation.code == user.org))
        person = s.scalar(select(Person).where(Person.email == user.email))
        assert org is not None
        assert person is not None
        return RaContext(
            actor=Actor(ref=f"ra:{person.id}", display=person.common_name),
            organisation_id=org.id,
            organisation_code=org.code,
            role=user.role,
        )


def test_a_waiting_grant_is_decided_once_by_racing_managers(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    directory.update_policy(rt, operator, "ORGA", {"role_grants_need_approval": True})
    managers = [w.ra_user(rt, operator, "ORGA", forename=f"M{i}") for i in range(5)]
    newbie = f.person(rt, operator, "ORGA", forename="Nick", surname="New")
    asker = _ctx(rt, managers[0])
    assert ra_roles.grant(rt, asker, newbie, "auditor") is False
    request_id = ra_roles.page(rt, asker).pending[0].id
    deciders = [_ctx(rt, m) for m in managers]  # the asker races too, and must lose

    def decide(i: int) -> object:
        return ra_roles.decide(rt, deciders[i], request_id, approve=i % 2 == 1)

    results, errors = _race(len(deciders), decide)
    assert len(results) == 1, errors
    assert all(isinstance(e, CardvaultError) for e in errors)
    with rt.db() as s:
        grants = s.scalar(select(func.count()).select_from(RaRoleGrant).where(
            RaRoleGrant.role == "auditor"))  # fmt: skip
        decided = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action.in_((AuditAction.RA_ROLE_GRANTED,
                                   AuditAction.RA_ROLE_REQUEST_REFUSED)),
            AuditEvent.details["role"].as_string() == "auditor"))  # fmt: skip
    assert grants in (0, 1)
    assert decided == 1


def test_two_ras_adding_the_same_person_at_once_leave_one(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    ras = [_ctx(rt, w.ra_user(rt, operator, "ORGA", forename=f"R{i}")) for i in range(4)]
    member = ra_people.new_member(user_id="555000700001", forename="Twin", surname="Twice",
                                  email="twin@example.org", mobile="")  # fmt: skip
    results, errors = _race(len(ras), lambda i: ra_people.create(rt, ras[i], member))
    assert len(results) == 1
    assert len(errors) == len(ras) - 1
    assert all(isinstance(e, CardvaultError) and status_of(e) == 409 for e in errors), errors
    with rt.db() as s:
        assert s.scalar(select(func.count()).select_from(Person).where(
            Person.user_id == "555000700001")) == 1  # fmt: skip
