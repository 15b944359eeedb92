"""The key-management key (PIV 9D): an organisation that wants it gives its cards an
encryption key and certificate, at issuance or -- for cards issued before -- at the next
insertion into a reader; the key decrypts (RSA) or agrees a key (ECDH) through the applet, each
use audited; the holder's renewal keeps it. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import select
from tests.support import auth as a
from tests.support import piv_service as p
from tests.support import ra_web as w

from cardvault.card import tlv
from cardvault.card.apdu import Sw
from cardvault.card.piv import Algorithm, ObjectId, Slot
from cardvault.card.piv import objects as piv_objects
from cardvault.domain.audit_actions import AuditAction
from cardvault.errors import InvalidInput
from cardvault.services.cards import operations
from cardvault.services.directory import registry
from cardvault.services.piv import card_pin, ports
from cardvault.services.piv import reader_links as links
from cardvault.services.piv.image import piv_serial
from cardvault.services.pki import ca, renewal
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Certificate

PIN = "27182818"
ON = {"key_management": True}


@pytest.fixture
def engine(rt: Runtime) -> Engine:
    return Engine(rt)


def _holder(
    rt: Runtime, operator: Actor, engine: Engine, *, wanted: bool, algorithm: str = "rsa2048"
) -> tuple[a.HolderFixture, str, bytes]:
    """A card issued through the API in an organisation that does (not) want 9D, enrolled,
    signed in, with its card PIN set."""
    org = a.open_org(rt, operator)
    if wanted:
        registry.update_policy(rt, operator, org, ON)
    fixture = a.holder(rt, operator, org, algorithm=algorithm)
    result = a.login(engine, fixture, code=fixture.code(time.time()))
    assert result.session is not None
    token, key = result.session.token, result.session_key
    card_pin.set_pin(rt, a.client(), token=token, session_key=key, new_pin=PIN)
    return fixture, token, key


def _valid(rt: Runtime, card_id: str, usage: str) -> list[x509.Certificate]:
    with rt.db() as s:
        rows = s.scalars(
            select(Certificate).where(
                Certificate.card_id == card_id,
                Certificate.usage == usage,
                Certificate.status == "valid",
            )
        ).all()
        return [x509.load_pem_x509_certificate(row.pem.encode()) for row in rows]


def _decipher(reader: p.Reader, public: rsa.RSAPublicKey, message: bytes) -> bytes:
    """Encrypt to the certificate as a sender would; the card's raw RSA on the block; the
    PKCS#1 v1.5 padding removed here, as OpenSC removes it on the PC."""
    block, sw = reader.sign(Slot.KEY_MANAGEMENT, Algorithm.RSA2048, public.encrypt(
        message, padding.PKCS1v15()
    ))  # fmt: skip
    assert sw == Sw.SUCCESS
    plain = tlv.decode_map(tlv.decode_single(block, 0x7C))[0x82]
    assert plain[:2] == b"\x00\x02"
    return plain[plain.index(b"\x00", 2) + 1 :]


def test_a_card_of_an_organisation_that_wants_it_is_issued_with_an_encryption_certificate(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    fixture, token, key = _holder(rt, operator, engine, wanted=True)
    [cert] = _valid(rt, fixture.card.card_id, "key_management")
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment
    assert not usage.digital_signature
    purposes = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(purposes) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.RFC822Name) == [fixture.email]
    cert.verify_directly_issued_by(ca.load(rt).cert)
    link = links.open_use_link(rt, a.client(), token=token, session_key=key)
    answer = link.objects[ObjectId.CERT_KEY_MANAGEMENT]
    assert answer is not None
    assert piv_objects.certificate(tlv.decode_single(answer, 0x53)) == cert.public_bytes(
        Encoding.DER
    )


def test_the_9d_key_decrypts_after_the_pin_and_each_use_is_audited(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    fixture, token, key = _holder(rt, operator, engine, wanted=True)
    [cert] = _valid(rt, fixture.card.card_id, "key_management")
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    reader = p.open_reader(rt, token, key)
    sealed = public.encrypt(b"the content-encryption key", padding.PKCS1v15())
    _, sw = reader.sign(Slot.KEY_MANAGEMENT, Algorithm.RSA2048, sealed)
    assert sw == Sw.SECURITY_STATUS_NOT_SATISFIED
    assert reader.verify(PIN.encode()) == Sw.SUCCESS
    assert _decipher(reader, public, b"the content-encryption key") == (
        b"the content-encryption key"
    )
    assert _decipher(reader, public, b"and another") == b"and another"  # PIN once per link
    assert p.card_actions(rt, fixture.card.card_id).count(AuditAction.CARD_DECRYPTED) == 2


def test_a_card_issued_before_gets_the_key_at_its_next_insertion(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    fixture, token, key = _holder(rt, operator, engine, wanted=False)
    card_id = fixture.card.card_id
    first = links.open_use_link(rt, a.client(), token=token, session_key=key)
    assert first.objects[ObjectId.CERT_KEY_MANAGEMENT] is None
    assert _valid(rt, card_id, "key_management") == []
    registry.update_policy(rt, operator, fixture.card.org, ON)
    second = links.open_use_link(rt, a.client(), token=token, session_key=key)
    [cert] = _valid(rt, card_id, "key_management")
    answer = second.objects[ObjectId.CERT_KEY_MANAGEMENT]
    assert answer is not None
    assert piv_objects.certificate(tlv.decode_single(answer, 0x53)) == cert.public_bytes(
        Encoding.DER
    )
    links.open_use_link(rt, a.client(), token=token, session_key=key)
    assert len(_valid(rt, card_id, "key_management")) == 1  # once, not at every insertion
    assert p.card_actions(rt, card_id).count("card.key_management_added") == 1
    reader = p.open_reader(rt, token, key)
    assert reader.verify(PIN.encode()) == Sw.SUCCESS
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert _decipher(reader, public, b"for the new key") == b"for the new key"


def test_a_p256_card_agrees_a_key_with_ecdh(rt: Runtime, operator: Actor, engine: Engine) -> None:
    fixture, token, key = _holder(rt, operator, engine, wanted=True, algorithm="ecp256")
    [cert] = _valid(rt, fixture.card.card_id, "key_management")
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_agreement
    assert not usage.key_encipherment
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    sender = ec.generate_private_key(ec.SECP256R1())
    point = sender.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    reader = p.open_reader(rt, token, key)
    assert reader.verify(PIN.encode()) == Sw.SUCCESS
    body = tlv.encode(0x7C, tlv.encode(0x82, b"") + tlv.encode(0x85, point))
    answer, sw = reader.transmit(
        bytes((0, 0x87, Algorithm.ECC_P256, Slot.KEY_MANAGEMENT, len(body))) + body
    )
    assert sw == Sw.SUCCESS
    secret = tlv.decode_map(tlv.decode_single(answer, 0x7C))[0x82]
    assert secret == sender.exchange(ec.ECDH(), public)
    assert AuditAction.CARD_KEY_AGREED in p.card_actions(rt, fixture.card.card_id)


def test_the_holders_renewal_keeps_the_key_management_key(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    fixture, token, key = _holder(rt, operator, engine, wanted=True)
    card_id = fixture.card.card_id
    [before] = _valid(rt, card_id, "key_management")
    renewal.renew_in_session(rt, a.client(), token, key)
    assert _valid(rt, card_id, "key_management") == [before]  # mail sent to it stays readable
    reader = p.open_reader(rt, token, key)
    assert reader.verify(PIN.encode()) == Sw.SUCCESS
    public = before.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert _decipher(reader, public, b"old mail") == b"old mail"
    renewal.recertify(rt, operator, fixture.card.serial)
    [again] = _valid(rt, card_id, "key_management")  # the RA's renewal certifies it anew
    assert again.serial_number != before.serial_number
    assert again.public_key() == public


def test_the_key_management_key_never_signs_through_the_api(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    _, token, key = _holder(rt, operator, engine, wanted=True)
    request = operations.SignRequest(
        token=token, session_key=key, key="key-management", digest=bytes(32), hash_alg="sha256"
    )
    with pytest.raises(InvalidInput, match="authentication or content-commitment"):
        operations.sign(rt, a.client(), request)


def test_the_ra_sees_how_smartcard_software_names_the_card(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    """The person's page shows the PKCS#11 token serial (the card id's last 16 hex digits,
    what OpenSC takes from the CHUID's GUID) and yubico-piv-tool's serial."""
    fixture, _, _ = _holder(rt, operator, engine, wanted=False)
    client = w.client(rt)
    w.sign_in(client, w.ra_user(rt, operator, fixture.card.org))
    page = client.get(f"/ra/persons/{fixture.card.user_id}")
    assert page.status_code == 200
    assert uuid.UUID(fixture.card.card_id).hex[-16:] in page.text
    assert str(piv_serial(fixture.card.serial)) in page.text


def test_a_9d_key_personalised_before_it_had_a_certificate_usage_still_decrypts(
    rt: Runtime, operator: Actor, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cards personalised over PC/SC by an earlier version hold their 9D key under the role
    ``piv_9d``; the key is bound to that name in its seal, so reading falls back to it."""
    generated: list[rsa.RSAPublicKey] = []
    current = ports.key_role

    def as_an_earlier_version(reader: p.Reader) -> None:
        with monkeypatch.context() as m:
            m.setattr(
                ports,
                "key_role",
                lambda slot: "piv_9d" if slot is Slot.KEY_MANAGEMENT else current(slot),
            )
            public = reader.generate(Slot.KEY_MANAGEMENT, Algorithm.RSA2048)
        assert isinstance(public, rsa.RSAPublicKey)
        generated.append(public)

    used = p.issued_and_enrolled(rt, operator, engine, also=as_an_earlier_version)
    assert used.reader.verify() == Sw.SUCCESS
    assert _decipher(used.reader, generated[0], b"mail from last year") == b"mail from last year"
