"""Builders for the objects most tests need: an organisation, a person, an issued card."""

from __future__ import annotations

from dataclasses import dataclass

from cardvault.services.cards import enrolment, issuance
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime

ISSUANCE_PASSCODE = "issue-me-123"
STRONG_PASSCODE = "correct horse battery staple 42"
QUESTIONS = ("First pet?", "Town of birth?", "Favourite teacher?")
ANSWERS = ("Rex the Dog", "Leeds", "Mrs Smith")


@dataclass(frozen=True, kw_only=True)
class IssuedFixture:
    org: str
    user_id: str
    serial: str
    card_id: str


_counter = iter(range(100000, 999999))


def org(rt: Runtime, actor: Actor, code: str = "ORG1", **kwargs: object) -> str:
    directory.create_organisation(rt, actor, code=code, name=f"Organisation {code}", **kwargs)  # type: ignore[arg-type]
    return code


def person(
    rt: Runtime,
    actor: Actor,
    org_code: str,
    *,
    forename: str = "Alice",
    surname: str = "Example",
    email: str | None = None,
) -> str:
    uid = f"555000{next(_counter):06d}"
    directory.create_person(
        rt,
        actor,
        directory.NewPerson(
            user_id=uid,
            forename=forename,
            surname=surname,
            email=email or f"{forename.lower()}.{uid}@example.org",
            organisations=(org_code,),
        ),
    )
    return uid


def issued_card(
    rt: Runtime,
    actor: Actor,
    org_code: str = "ORG1",
    *,
    algorithm: str | None = None,
    external_ca: bool = False,
    **person_kw: str,
) -> IssuedFixture:
    uid = person(rt, actor, org_code, **person_kw)
    card = issuance.issue_card(
        rt,
        actor,
        issuance.IssueRequest(
            organisation=org_code,
            user_id=uid,
            issuance_passcode=ISSUANCE_PASSCODE,
            key_algorithm=algorithm,
            external_ca=external_ca,
        ),
    )
    return IssuedFixture(org=org_code, user_id=uid, serial=card.serial, card_id=card.card_id)


def enrol_request(serial: str, **overrides: object) -> enrolment.EnrolRequest:
    base: dict[str, object] = {
        "serial": serial,
        "issuance_passcode": ISSUANCE_PASSCODE,
        "passcode": STRONG_PASSCODE,
        "answers": tuple(
            enrolment.SecurityAnswer(question=q, answer=a)
            for q, a in zip(QUESTIONS, ANSWERS, strict=True)
        ),
    }
    base.update(overrides)
    return enrolment.EnrolRequest(**base)  # type: ignore[arg-type]


def active_card(rt: Runtime, actor: Actor, org_code: str = "ORG1", **kw: str) -> IssuedFixture:
    card = issued_card(rt, actor, org_code, **kw)
    enrolment.enrol(rt, actor, enrol_request(card.serial))
    return card
