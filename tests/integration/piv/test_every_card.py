"""Every card is a smart card (DESIGN §3.8 revised): a card issued through the API gets its PIV
applet when its holder sets a card PIN, and is then used like a PC/SC-issued card.

On SQLite and PostgreSQL, through the same relay the HTTP endpoint uses.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import piv_service as p

from cardvault.card import tlv
from cardvault.card.apdu import Sw
from cardvault.card.piv import Algorithm, ObjectId, Slot, load_state
from cardvault.card.piv import objects as piv_objects
from cardvault.crypto.content_signing import CHUID_SECURITY_OBJECT, CONTENT_SIGNING, PIV_SIGNER_DN
from cardvault.domain.card_pin import WeakCardPin
from cardvault.domain.vocabulary import AppletOrigin
from cardvault.errors import InvalidInput
from cardvault.services.cards import enrolment, methods
from cardvault.services.piv import card_pin
from cardvault.services.piv import reader_links as links
from cardvault.services.piv.errors import (
    CardPinBlocked,
    NoPivApplet,
    NotReadyForReaders,
    WrongCardPin,
)
from cardvault.services.piv.ports import Mode
from cardvault.services.pki import ca, renewal
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Certificate, Person, PivCard, PivLink

PIN = "27182818"
DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")


@dataclass
class Holder:
    fixture: a.HolderFixture
    token: str
    session_key: bytes


@pytest.fixture
def engine(rt: Runtime) -> Engine:
    return Engine(rt)


def _sign_in(engine: Engine, holder: a.HolderFixture, *, later: bool = False) -> Holder:
    """Passcode and TOTP; ``later``: with the next code (a code signs in once)."""
    result = a.login(engine, holder, code=holder.code(time.time() + (30 if later else 0)))
    assert result.session is not None
    return Holder(fixture=holder, token=result.session.token, session_key=result.session_key)


@pytest.fixture
def holder(rt: Runtime, operator: Actor, engine: Engine) -> Holder:
    """A card issued through the API (keys made in the service), enrolled, signed in."""
    org = a.open_org(rt, operator)
    return _sign_in(engine, a.holder(rt, operator, org))


def _set(rt: Runtime, h: Holder, new: str, current: str | None = None) -> card_pin.PinChanged:
    return card_pin.set_pin(
        rt, a.client(), token=h.token, session_key=h.session_key, new_pin=new, current_pin=current
    )


def _reader(rt: Runtime, h: Holder) -> p.Reader:
    return p.open_reader(rt, h.token, h.session_key)


def _certificates(rt: Runtime, card_id: str) -> dict[str, x509.Certificate]:
    with rt.db() as s:
        rows = s.scalars(
            select(Certificate).where(Certificate.card_id == card_id, Certificate.status == "valid")
        ).all()
        return {row.usage: x509.load_pem_x509_certificate(row.pem.encode()) for row in rows}


def _actions(rt: Runtime, card_id: str) -> list[str]:
    with rt.db() as s:
        return list(
            s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.card_id == card_id, AuditEvent.action.like("piv.%"))
                .order_by(AuditEvent.seq)
            )
        )


def _block(message: bytes) -> bytes:
    payload = DIGEST_INFO_SHA256 + hashlib.sha256(message).digest()
    return b"\x00\x01" + b"\xff" * (256 - 3 - len(payload)) + b"\x00" + payload


def test_a_card_issued_through_the_api_goes_in_the_reader_once_it_has_a_card_pin(
    rt: Runtime, holder: Holder
) -> None:
    with pytest.raises(NoPivApplet) as refused:
        links.open_use_link(rt, a.client(), token=holder.token, session_key=holder.session_key)
    assert refused.value.code == "piv_pin_not_set"
    found = card_pin.status(rt, a.client(), token=holder.token, session_key=holder.session_key)
    assert (found.pin_set, found.blocked) == (False, False)
    assert _set(rt, holder, PIN).outcome == "set"
    card_id = holder.fixture.card.card_id
    with rt.db() as s:
        piv = s.get(PivCard, card_id)
        assert piv is not None
        assert piv.origin is AppletOrigin.SERVICE
        assert PIN.encode() not in piv.secrets
        assert PIN not in piv.state
    assert _actions(rt, card_id) == ["piv.applet_built", "piv.pin_set"]
    link = links.open_use_link(rt, a.client(), token=holder.token, session_key=holder.session_key)
    certs = _certificates(rt, card_id)
    for usage, tag in (
        ("authentication", ObjectId.CERT_PIV_AUTHENTICATION),
        ("content_commitment", ObjectId.CERT_DIGITAL_SIGNATURE),
    ):
        answer = link.objects[tag]
        assert answer is not None
        der = piv_objects.certificate(tlv.decode_single(answer, 0x53))
        assert x509.load_der_x509_certificate(der) == certs[usage]


def test_the_issued_keys_sign_9a_once_per_link_and_9c_every_time(
    rt: Runtime, holder: Holder
) -> None:
    _set(rt, holder, PIN)
    reader = _reader(rt, holder)
    certs = _certificates(rt, holder.fixture.card.card_id)
    block = _block(b"log me in")
    assert reader.sign(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048, block)[1] == (
        Sw.SECURITY_STATUS_NOT_SATISFIED
    )
    assert reader.verify(PIN.encode()) == Sw.SUCCESS
    for slot, usage in (
        (Slot.PIV_AUTHENTICATION, "authentication"),
        (Slot.DIGITAL_SIGNATURE, "content_commitment"),
    ):
        data, sw = reader.sign(slot, Algorithm.RSA2048, block)
        assert sw == Sw.SUCCESS
        public = certs[usage].public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(data[8:], b"log me in", padding.PKCS1v15(), hashes.SHA256())
    assert reader.sign(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048, block)[1] == Sw.SUCCESS
    again = reader.sign(Slot.DIGITAL_SIGNATURE, Algorithm.RSA2048, block)[1]
    assert again == Sw.SECURITY_STATUS_NOT_SATISFIED


def test_such_a_card_has_no_management_key_and_no_puk(rt: Runtime, holder: Holder) -> None:
    _set(rt, holder, PIN)
    reader = _reader(rt, holder)
    assert reader.authenticate() == Sw.INCORRECT_P1P2  # no 3DES key, and no default one
    aes = bytes((0, 0x87, Algorithm.AES256, 0x9B, 4, 0x7C, 2, 0x80, 0))
    assert reader.sw(aes) == Sw.SECURITY_STATUS_NOT_SATISFIED  # nor any other
    reset = bytes.fromhex("002c008010") + p.pad(b"12345678") + p.pad(b"55554444")
    assert reader.sw(reset) == Sw.AUTH_METHOD_BLOCKED


@pytest.mark.parametrize("weak", ["123456", "000000", "98765432", "12345", "abcdefgh"])
def test_a_weak_or_malformed_pin_is_refused_and_nothing_is_built(
    rt: Runtime, holder: Holder, weak: str
) -> None:
    with pytest.raises(InvalidInput):
        _set(rt, holder, weak)
    with rt.db() as s:
        assert s.get(PivCard, holder.fixture.card.card_id) is None


def test_a_weak_pin_is_refused_from_smartcard_software_too(rt: Runtime, holder: Holder) -> None:
    _set(rt, holder, PIN)
    reader = _reader(rt, holder)
    assert reader.change(0x80, PIN.encode(), b"111111") == Sw.INCORRECT_DATA
    assert reader.change(0x80, PIN.encode(), b"20242025") == Sw.SUCCESS
    assert reader.verify(b"20242025") == Sw.SUCCESS


def test_changing_needs_the_current_pin_and_a_wrong_one_counts(rt: Runtime, holder: Holder) -> None:
    _set(rt, holder, PIN)
    reader = _reader(rt, holder)
    assert reader.verify(PIN.encode()) == Sw.SUCCESS  # kept for re-checks on this link
    with pytest.raises(WrongCardPin) as wrong:
        _set(rt, holder, "31415926", current="11223344")
    assert wrong.value.attempts_left == 2
    with pytest.raises(WrongCardPin):
        _set(rt, holder, "31415926")
    assert _set(rt, holder, "31415926", current=PIN).outcome == "changed"
    with rt.db() as s:
        piv = s.get(PivCard, holder.fixture.card.card_id)
        assert piv is not None
        assert load_state(piv.state.encode()).pin_tries.left == 3
        recheck = s.scalars(select(PivLink.pin_recheck)).all()
        assert recheck == [None]
    assert reader.verify(PIN.encode()) == Sw.retries(2)
    assert reader.verify(b"31415926") == Sw.SUCCESS


def test_a_blocked_pin_is_unblocked_by_a_new_sign_in_not_by_the_old_session(
    rt: Runtime, engine: Engine, holder: Holder
) -> None:
    _set(rt, holder, PIN)
    reader = _reader(rt, holder)
    for _ in range(3):
        reader.verify(b"99990000")
    assert reader.verify(PIN.encode()) == Sw.AUTH_METHOD_BLOCKED
    with pytest.raises(CardPinBlocked):
        _set(rt, holder, "31415926")
    old = card_pin.status(rt, a.client(), token=holder.token, session_key=holder.session_key)
    assert (old.blocked, old.may_unblock) == (True, False)
    fresh = _sign_in(engine, holder.fixture, later=True)
    found = card_pin.status(rt, a.client(), token=fresh.token, session_key=fresh.session_key)
    assert (found.blocked, found.may_unblock) == (True, True)
    with pytest.raises(WeakCardPin):
        _set(rt, fresh, "444444")
    assert _set(rt, fresh, "31415926").outcome == "unblocked"
    assert _reader(rt, fresh).verify(b"31415926") == Sw.SUCCESS
    with rt.db() as s:
        piv = s.get(PivCard, holder.fixture.card.card_id)
        assert piv is not None
        assert piv.pin_blocked_at is None
    actions = _actions(rt, holder.fixture.card.card_id)
    assert "piv.blocked" in actions
    assert actions[-2:] == ["piv.pin_unblocked", "piv.card_inserted"]


def test_the_pin_is_managed_only_in_a_holders_session_with_its_key(
    rt: Runtime, holder: Holder
) -> None:
    with pytest.raises(Exception, match="session key"):
        card_pin.set_pin(rt, a.client(), token=holder.token, session_key=bytes(32), new_pin=PIN)
    with rt.db() as s:
        assert s.get(PivCard, holder.fixture.card.card_id) is None


def test_a_p256_card_signs_with_ecdsa_in_both_slots(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    org = a.open_org(rt, operator)
    holder = _sign_in(engine, a.holder(rt, operator, org, algorithm="ecp256"))
    _set(rt, holder, PIN)
    reader = _reader(rt, holder)
    certs = _certificates(rt, holder.fixture.card.card_id)
    digest = hashlib.sha256(b"a prescription").digest()
    for slot, usage in (
        (Slot.PIV_AUTHENTICATION, "authentication"),
        (Slot.DIGITAL_SIGNATURE, "content_commitment"),
    ):
        assert reader.verify(PIN.encode()) == Sw.SUCCESS
        data, sw = reader.sign(slot, Algorithm.ECC_P256, digest)
        assert sw == Sw.SUCCESS
        public = certs[usage].public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(data[4:], b"a prescription", ec.ECDSA(hashes.SHA256()))
    _, sw = reader.sign(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048, bytes(256))
    assert sw == Sw.INCORRECT_P1P2  # the slot holds a P-256 key


def test_a_card_without_certificates_cannot_get_an_applet(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    """A card issued for an external CA whose certificates were never imported."""
    org = a.open_org(rt, operator)
    card = f.issued_card(rt, operator, org, external_ca=True)
    enrolment.enrol(rt, operator, f.enrol_request(card.serial))
    totp = methods.add_totp(rt, operator, serial=card.serial, org_code=org)
    fixture = a.HolderFixture(card=card, email=_email(rt, card.user_id), totp_secret=totp.secret)
    holder = _sign_in(engine, fixture)
    with pytest.raises(NotReadyForReaders, match="no valid authentication certificate"):
        _set(rt, holder, PIN)
    with rt.db() as s:
        assert s.get(PivCard, card.card_id) is None


def _email(rt: Runtime, user_id: str) -> str:
    with rt.db() as s:
        email = s.scalar(select(Person.email).where(Person.user_id == user_id))
    assert email is not None
    return email


def test_the_chuid_is_signed_by_the_cas_content_signer(
    rt: Runtime, holder: Holder, tmp_path: Path
) -> None:
    """SP 800-73-4: the issuer signature (3E) is a CMS SignedData over the CHUID's fields
    before it, by a certificate with id-PIV-content-signing from the card's CA."""
    _set(rt, holder, PIN)
    link = links.open_use_link(rt, a.client(), token=holder.token, session_key=holder.session_key)
    answer = link.objects[ObjectId.CHUID]
    assert answer is not None
    chuid = tlv.decode_single(answer, 0x53)
    signature = tlv.decode_map(chuid)[0x3E]
    content = chuid[: chuid.index(tlv.encode(0x3E, signature))]
    assert tlv.decode_map(content)[0x34] == uuid.UUID(holder.fixture.card.card_id).bytes
    files = {"sig.der": signature, "content.bin": content, "ca.pem": ca.load(rt).cert_pem}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    verified = subprocess.run(
        [
            *("openssl", "cms", "-verify", "-binary", "-inform", "DER"),
            *("-in", str(tmp_path / "sig.der"), "-content", str(tmp_path / "content.bin")),
            *("-CAfile", str(tmp_path / "ca.pem"), "-purpose", "any", "-out", "/dev/null"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert "Verification successful" in verified.stderr
    signer = pkcs7.load_der_pkcs7_certificates(signature)[0]
    usages = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert CONTENT_SIGNING in usages
    signed = cms.ContentInfo.load(signature)["content"]  # the SP 800-73-4 shape
    assert signed["encap_content_info"]["content_type"].dotted == CHUID_SECURITY_OBJECT
    assert signed["encap_content_info"]["content"].native is None  # detached
    attributes = {a["type"].dotted: a["values"] for a in signed["signer_infos"][0]["signed_attrs"]}
    assert attributes["1.2.840.113549.1.9.3"][0].dotted == CHUID_SECURITY_OBJECT
    assert attributes[PIV_SIGNER_DN][0].dump() == signer.subject.public_bytes()
    (tmp_path / "content.bin").write_bytes(content.replace(content[-8:], b"20991231"))
    tampered = subprocess.run(
        [
            *("openssl", "cms", "-verify", "-binary", "-inform", "DER"),
            *("-in", str(tmp_path / "sig.der"), "-content", str(tmp_path / "content.bin")),
            *("-CAfile", str(tmp_path / "ca.pem"), "-purpose", "any", "-out", "/dev/null"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tampered.returncode != 0


def test_after_a_renewal_the_reader_shows_the_new_certificates_and_signs_with_the_new_keys(
    rt: Runtime, holder: Holder
) -> None:
    _set(rt, holder, PIN)
    card_id = holder.fixture.card.card_id
    before = _certificates(rt, card_id)
    renewal.renew_in_session(rt, a.client(), holder.token, holder.session_key)
    after = _certificates(rt, card_id)
    assert after["authentication"] != before["authentication"]
    link = links.open_use_link(rt, a.client(), token=holder.token, session_key=holder.session_key)
    answer = link.objects[ObjectId.CERT_PIV_AUTHENTICATION]
    assert answer is not None
    der = piv_objects.certificate(tlv.decode_single(answer, 0x53))
    assert x509.load_der_x509_certificate(der) == after["authentication"]
    reader = p.Reader(
        rt=rt, mode=Mode.USE, token=holder.token, key=holder.session_key, link_id=link.link_id
    )
    assert reader.verify(PIN.encode()) == Sw.SUCCESS
    data, sw = reader.sign(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048, _block(b"renewed"))
    assert sw == Sw.SUCCESS
    public = after["authentication"].public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(data[8:], b"renewed", padding.PKCS1v15(), hashes.SHA256())
