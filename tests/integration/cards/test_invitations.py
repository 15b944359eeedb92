"""Partial enrolment: the RA invites (email link + SMS code), the holder finishes."""

from __future__ import annotations

import re

import pytest
from tests.support import factories as f
from tests.support import portal as p
from tests.support.auth import client

from cardvault.crypto.keyslots import open_passcode_slot, open_recovery_slots
from cardvault.domain.passcode_policy import WeakPasscode
from cardvault.errors import InvalidInput
from cardvault.notify.outbox import MemoryOutbox
from cardvault.services.cards import invitations
from cardvault.services.cards.enrolment import SecurityAnswer
from cardvault.services.cards.errors import WrongCode
from cardvault.services.cards.sealing import open_record
from cardvault.services.directory import registry as directory
from cardvault.services.ra import cards as ra_cards
from cardvault.services.ra.actions import RaContext
from cardvault.services.recovery.errors import LinkInvalid, LinkWornOut
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Card, Person

PASSCODE = "lantern orchard seventy bicycle"
ANSWERS = tuple(
    SecurityAnswer(question=q, answer=a) for q, a in zip(f.QUESTIONS, f.ANSWERS, strict=True)
)


def _ra(rt: Runtime, operator: Actor) -> RaContext:
    with rt.db() as s:
        org = directory.get_org(s, "ORG1")
        return RaContext(
            actor=operator, organisation_id=org.id, organisation_code="ORG1", role="ra_agent"
        )


def _send_invitation(rt: Runtime, operator: Actor, card: f.IssuedFixture) -> None:
    invited = ra_cards.invite(
        rt,
        _ra(rt, operator),
        card.user_id,
        issuance_passcode=f.ISSUANCE_PASSCODE,
        email="new.holder@example.org",
        phone="07700 900123",
    )
    assert invited.phone == "+447700900123"


def _invite(rt: Runtime, operator: Actor) -> tuple[f.IssuedFixture, str, str]:
    f.org(rt, operator)
    card = f.issued_card(rt, operator)
    _send_invitation(rt, operator, card)
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    (mail,) = box.emails
    (sms,) = box.sms
    assert mail.to == "new.holder@example.org"
    assert "7 days" in mail.text
    assert sms.to == "+447700900123"
    code = re.search(r"\b(\d{6})\b", sms.text)
    assert code is not None
    return card, p.token_in(mail.text, "invitation"), code.group(1)


def _card(rt: Runtime, card_id: str) -> Card:
    with rt.db() as s:
        card = s.get(Card, card_id)
        assert card is not None
        return card


def test_invitation_completed_by_the_holder(rt: Runtime, operator: Actor) -> None:
    card, token, code = _invite(rt, operator)
    assert _card(rt, card.card_id).status == "enrolled"
    page = invitations.open_invitation(rt, token)
    assert page.organisation_name == "Organisation ORG1"
    accepted = invitations.confirm_code(rt, client(), token, code)
    done = invitations.complete(
        rt,
        client(),
        token,
        accepted.transaction_id,
        accepted.key,
        passcode=PASSCODE,
        confirm=PASSCODE,
        answers=ANSWERS,
        want_recovery_code=True,
    )
    assert done.recovery_code
    row = _card(rt, card.card_id)
    assert row.status == "active"
    record = open_record(rt.master_key, row)
    assert sorted(s.name for s in record.slots) == [
        "passcode",
        "recovery-1-2",
        "recovery-1-3",
        "recovery-2-3",
        "recovery-code",
    ]
    open_passcode_slot(record, PASSCODE)
    open_recovery_slots(record, {1: "rex the dog", 3: "MRS SMITH"})
    with rt.db() as s:
        person = s.get(Person, row.person_id)
        assert person is not None
        assert (person.email, person.phone) == ("new.holder@example.org", "+447700900123")
    with pytest.raises(LinkInvalid, match=r"no longer applies|already been used"):
        invitations.open_invitation(rt, token)


def test_wrong_codes_are_limited_and_kill_the_link(rt: Runtime, operator: Actor) -> None:
    card, token, code = _invite(rt, operator)
    wrong = "000000" if code != "000000" else "111111"
    for left in range(invitations.MAX_FAILURES - 1, 0, -1):
        with pytest.raises(WrongCode, match=f"{left} tr"):
            invitations.confirm_code(rt, client(), token, wrong)
    with pytest.raises(LinkWornOut):
        invitations.confirm_code(rt, client(), token, wrong)
    with pytest.raises(LinkWornOut):
        invitations.confirm_code(rt, client(), token, code)
    assert _card(rt, card.card_id).status == "enrolled"


def test_bad_input_at_completion_changes_nothing(rt: Runtime, operator: Actor) -> None:
    card, token, code = _invite(rt, operator)
    accepted = invitations.confirm_code(rt, client(), token, code)
    version = _card(rt, card.card_id).record_version

    def complete(passcode: str, confirm: str, answers: tuple[SecurityAnswer, ...]) -> None:
        invitations.complete(
            rt,
            client(),
            token,
            accepted.transaction_id,
            accepted.key,
            passcode=passcode,
            confirm=confirm,
            answers=answers,
        )

    with pytest.raises(WeakPasscode):
        complete("password", "password", ANSWERS)
    with pytest.raises(InvalidInput, match="not the same"):
        complete(PASSCODE, PASSCODE + "!", ANSWERS)
    duplicate = (ANSWERS[0], ANSWERS[0], ANSWERS[2])
    with pytest.raises(InvalidInput, match="same as another"):
        complete(PASSCODE, PASSCODE, duplicate)
    with pytest.raises(InvalidInput, match="6-digit"):
        invitations.confirm_code(rt, client(), token, "12ab")
    assert _card(rt, card.card_id).record_version == version
    assert _card(rt, card.card_id).status == "enrolled"
    complete(PASSCODE, PASSCODE, ANSWERS)
    assert _card(rt, card.card_id).status == "active"


def test_a_new_invitation_revokes_the_older_one(rt: Runtime, operator: Actor) -> None:
    card, old_token, _ = _invite(rt, operator)
    _send_invitation(rt, operator, card)
    with pytest.raises(LinkInvalid, match="replaced"):
        invitations.open_invitation(rt, old_token)
