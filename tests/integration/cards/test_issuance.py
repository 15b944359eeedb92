"""Issuing, enrolling and revoking cards on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import func, select
from tests.support import factories as f

from cardvault.crypto import keys as ckeys
from cardvault.crypto.keyslots import open_passcode_slot, open_private_key, open_recovery_slots
from cardvault.errors import Conflict, InvalidInput, NotFound
from cardvault.services.cards import enrolment, issuance
from cardvault.services.cards import state as cards
from cardvault.services.cards.errors import CardRevoked
from cardvault.services.cards.errors import NotAMember as NotMember
from cardvault.services.cards.sealing import open_record
from cardvault.services.pki import ca
from cardvault.services.signin.errors import CardLocked, WrongPasscode
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Card, Certificate, KeySlotInfo


def _card(rt: Runtime, serial: str) -> Card:
    with rt.db() as s:
        card = s.scalar(select(Card).where(Card.serial == serial))
        assert card is not None
        return card


def test_issue_card_generates_sealed_keys_and_two_certificates(
    rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator)
    card = _card(rt, issued.serial)
    assert card.status == "issued"
    assert card.key_algorithm == "rsa2048"
    record = open_record(rt.master_key, card)
    dek = open_passcode_slot(record, f.ISSUANCE_PASSCODE)
    pkcs8 = open_private_key(dek, card_id=card.id, sealed=record.key("authentication"))
    key = ckeys.load_private_key(pkcs8, trusted=False)
    with rt.db() as s:
        certs = list(s.scalars(select(Certificate).where(Certificate.card_id == card.id)))
    assert {c.usage for c in certs} == {"authentication", "content_commitment"}
    auth = next(c for c in certs if c.usage == "authentication")
    cert = x509.load_pem_x509_certificate(auth.pem.encode())
    assert ckeys.public_key_der(cert.public_key()) == ckeys.public_key_der(key)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["ecp256", "rsa3072"])
def test_issued_chains_verify_with_openssl(
    rt: Runtime, operator: Actor, tmp_path: Path, algorithm: str
) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator, algorithm=algorithm)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.export_pem(rt.data_dir))
    for usage, pem in cards.certificates_pem(rt, issued.serial).items():
        leaf = tmp_path / f"{usage}.pem"
        leaf.write_text(pem)
        out = subprocess.run(
            ["openssl", "verify", "-CAfile", str(ca_file), str(leaf)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().endswith(": OK")


def test_unknown_organisation_is_refused_and_nothing_is_written(
    rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator)
    uid = f.person(rt, operator, "ORG1")
    with pytest.raises(NotFound, match="no organisation with code NOPE"):
        issuance.issue_card(
            rt,
            operator,
            issuance.IssueRequest(
                organisation="NOPE", user_id=uid, issuance_passcode=f.ISSUANCE_PASSCODE
            ),
        )
    with rt.db() as s:
        assert s.scalar(select(func.count()).select_from(Card)) == 0


def test_person_outside_the_organisation_gets_no_card(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator, "ORG1")
    f.org(rt, operator, "ORG2")
    uid = f.person(rt, operator, "ORG2")
    with pytest.raises(NotMember, match="not a member of ORG1"):
        issuance.issue_card(
            rt,
            operator,
            issuance.IssueRequest(
                organisation="ORG1", user_id=uid, issuance_passcode=f.ISSUANCE_PASSCODE
            ),
        )


def test_second_live_card_for_a_person_is_refused(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator)
    with pytest.raises(Conflict, match="already has card"):
        issuance.issue_card(
            rt,
            operator,
            issuance.IssueRequest(
                organisation="ORG1", user_id=issued.user_id, issuance_passcode=f.ISSUANCE_PASSCODE
            ),
        )


def test_short_issuance_passcode_is_refused(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    uid = f.person(rt, operator, "ORG1")
    with pytest.raises(InvalidInput, match="at least 6 characters"):
        issuance.issue_card(
            rt,
            operator,
            issuance.IssueRequest(organisation="ORG1", user_id=uid, issuance_passcode="12345"),
        )


def test_enrolment_replaces_the_passcode_slot_and_keeps_the_keys(
    rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator)
    before = open_record(rt.master_key, _card(rt, issued.serial)).key("authentication")
    done = enrolment.enrol(rt, operator, f.enrol_request(issued.serial, recovery_code=True))
    assert done.status == "active"
    assert done.recovery_code
    card = _card(rt, issued.serial)
    record = open_record(rt.master_key, card)
    assert record.key("authentication") == before
    open_passcode_slot(record, f.STRONG_PASSCODE)
    with pytest.raises(Exception, match="does not open"):
        open_passcode_slot(record, f.ISSUANCE_PASSCODE)
    open_recovery_slots(record, {1: "rex the dog", 3: "  MRS  smith "})
    with rt.db() as s:
        names = set(s.scalars(select(KeySlotInfo.name).where(KeySlotInfo.card_id == card.id)))
    assert names == {"passcode", "recovery-1-2", "recovery-1-3", "recovery-2-3", "recovery-code"}


@pytest.mark.parametrize(
    ("passcode", "reason"),
    [
        ("short1", "too_short"),
        ("password123", "too_common"),
        ("alice example rules", "contains_personal_info"),
    ],
)
def test_weak_passcode_at_enrolment_says_why_and_changes_nothing(
    rt: Runtime, operator: Actor, passcode: str, reason: str
) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator)
    with pytest.raises(InvalidInput) as info:
        enrolment.enrol(rt, operator, f.enrol_request(issued.serial, passcode=passcode))
    assert info.value.as_dict().get("reason") == reason
    card = _card(rt, issued.serial)
    assert card.status == "issued"
    assert card.failed_attempts == 0
    open_passcode_slot(open_record(rt.master_key, card), f.ISSUANCE_PASSCODE)


def test_duplicate_questions_and_answers_are_refused(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator)
    same_q = tuple(enrolment.SecurityAnswer(question="Pet?", answer=a) for a in ("a1", "b2", "c3"))
    with pytest.raises(InvalidInput, match="same as another one"):
        enrolment.enrol(rt, operator, f.enrol_request(issued.serial, answers=same_q))
    same_a = tuple(enrolment.SecurityAnswer(question=q, answer="Leeds") for q in f.QUESTIONS)
    with pytest.raises(InvalidInput, match="same as another answer"):
        enrolment.enrol(rt, operator, f.enrol_request(issued.serial, answers=same_a))


def test_wrong_issuance_passcode_counts_and_the_third_locks(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator)
    for left in (2, 1, 0):
        with pytest.raises(WrongPasscode) as info:
            enrolment.enrol(
                rt, operator, f.enrol_request(issued.serial, issuance_passcode="wrong-one")
            )
        assert info.value.attempts_left == left
    card = _card(rt, issued.serial)
    assert card.status == "locked"
    assert card.lock_reason == "three incorrect passcodes"
    with pytest.raises((CardLocked, Conflict)):
        enrolment.enrol(rt, operator, f.enrol_request(issued.serial))


def test_revocation_shreds_keys_and_revokes_certificates(rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    issued = f.active_card(rt, operator)
    issuance.revoke_card(rt, operator, issued.serial, reason="left the trust")
    card = _card(rt, issued.serial)
    assert card.status == "revoked"
    assert card.key_record is None
    with pytest.raises(CardRevoked):
        open_record(rt.master_key, card)
    view = cards.show(rt, issued.serial)
    assert view.slots == ()
    assert {c.status for c in view.certificates} == {"revoked"}
    with pytest.raises(Conflict, match="already revoked"):
        issuance.revoke_card(rt, operator, issued.serial, reason="again")
