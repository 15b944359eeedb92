"""Issuance through the relay on SQLite and PostgreSQL: a blank card becomes an issued one."""

from __future__ import annotations

import pytest
from cryptography import x509
from sqlalchemy import select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import piv_service as p

from cardvault.card.apdu import Sw
from cardvault.card.piv import Algorithm, Slot
from cardvault.crypto import keys as ckeys
from cardvault.crypto import x509 as cx509
from cardvault.services.cards import enrolment
from cardvault.services.cards import state as cards
from cardvault.services.cards.errors import CardExists
from cardvault.services.cards.sealing import open_record
from cardvault.services.piv import issuance
from cardvault.services.piv import reader_links as links
from cardvault.services.piv.errors import LinkClosed
from cardvault.services.pki import ca
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Card, PivCard, PivLink


@pytest.fixture
def engine(rt: Runtime) -> Engine:
    return Engine(rt)


def _card(rt: Runtime, serial: str) -> Card:
    with rt.db() as s:
        card = s.scalar(select(Card).where(Card.serial == serial))
        assert card is not None
        return card


def test_a_blank_card_becomes_issued_when_personalised(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    w = p.world(rt, operator, engine)
    reader, started = p.start_issuance(rt, w)
    assert _card(rt, started.serial).status == "blank"
    assert started.holder == "Hana Holder"
    done = p.personalise(rt, reader, started.serial)
    card = _card(rt, started.serial)
    assert card.status == "issued"
    assert card.key_algorithm == "rsa2048"
    view = cards.show(rt, started.serial)
    assert {c.usage for c in view.certificates} == {"authentication", "content_commitment"}
    assert [s.name for s in view.slots] == ["passcode"]
    record = open_record(rt.master_key, card)
    assert {k.role: k.algorithm for k in record.keys} == {
        "authentication": "rsa2048",
        "content_commitment": "ecp256",
    }
    actions = p.card_actions(rt, card.id)
    assert actions.count("card.issued") == 1
    assert "piv.management_key_changed" in actions
    assert actions.count("piv.key_generated") == 2
    assert set(done.public_keys) == {Slot.PIV_AUTHENTICATION, Slot.DIGITAL_SIGNATURE}


def test_the_issuance_pin_is_the_issuance_passcode(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    w = p.world(rt, operator, engine)
    reader, started = p.start_issuance(rt, w)
    p.personalise(rt, reader, started.serial)
    with pytest.raises(Exception, match="passcode"):
        enrolment.enrol(rt, operator, f.enrol_request(started.serial, issuance_passcode="123456"))
    done = enrolment.enrol(
        rt, operator, f.enrol_request(started.serial, issuance_passcode=p.PIN.decode())
    )
    assert done.status == "active"


def test_progress_names_what_is_missing(rt: Runtime, operator: Actor, engine: Engine) -> None:
    w = p.world(rt, operator, engine)
    reader, _started = p.start_issuance(rt, w)
    answer = _relay_status(reader)
    assert answer.missing == (
        "change the management key",
        "generate a key in 9a",
        "generate a key in 9c",
        "set the PIN",
        "set the PUK",
    )
    assert reader.authenticate() == Sw.SUCCESS
    reader.generate(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048)
    assert "import a certificate for 9a" in _relay_status(reader).missing


def _relay_status(reader: p.Reader) -> object:
    from cardvault.services.piv.relay import RelayRequest, relay

    reader.seq += 1
    return relay(
        reader.rt,
        a.client(),
        RelayRequest(
            mode=reader.mode,
            token=reader.token,
            key=reader.key,
            link_id=reader.link_id,
            seq=reader.seq,
            apdu=bytes.fromhex("00200080"),
        ),
    )


def test_the_default_management_key_works_only_on_the_blank_card(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    w = p.world(rt, operator, engine)
    reader, _started = p.start_issuance(rt, w)
    assert reader.authenticate() == Sw.SUCCESS
    assert reader.set_management_key() == Sw.SUCCESS
    assert reader.authenticate() == Sw.SECURITY_STATUS_NOT_SATISFIED
    assert reader.authenticate(p.NEW_MANAGEMENT_KEY) == Sw.SUCCESS
    default = bytes.fromhex("010203040506070801020304050607080102030405060708")
    assert reader.set_management_key(default) == Sw.INCORRECT_DATA


def test_the_default_pin_cannot_be_set_again(rt: Runtime, operator: Actor, engine: Engine) -> None:
    w = p.world(rt, operator, engine)
    reader, _started = p.start_issuance(rt, w)
    assert reader.change(0x80, p.DEFAULT_PIN, p.DEFAULT_PIN) == Sw.INCORRECT_DATA
    assert reader.change(0x80, p.DEFAULT_PIN, b"135792") == Sw.SUCCESS
    assert reader.verify(b"135792") == Sw.SUCCESS


def test_a_new_issuance_replaces_an_abandoned_blank_card(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    w = p.world(rt, operator, engine)
    first_reader, first = p.start_issuance(rt, w)
    _second_reader, second = p.start_issuance(rt, w)
    assert _card(rt, first.serial).status == "revoked"
    assert _card(rt, second.serial).status == "blank"
    with rt.db() as s:
        assert s.get(PivCard, _card(rt, first.serial).id) is None
    with pytest.raises(LinkClosed):
        first_reader.send("00200080")


def test_a_person_with_a_card_gets_no_blank_one(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    w = p.world(rt, operator, engine)
    reader, started = p.start_issuance(rt, w)
    p.personalise(rt, reader, started.serial)
    with pytest.raises(CardExists):
        p.start_issuance(rt, w)


def test_issuance_needs_an_issuing_role_in_that_organisation(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    w = p.world(rt, operator, engine)
    from cardvault.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        issuance.start(rt, a.client(), token=w.ra_token, user_id=w.user_id, org_code="OTHER")
    holder = a.holder(rt, operator, w.org)
    result = a.login(engine, holder, code=holder.code())
    assert result.session is not None
    with pytest.raises(Exception, match="session cannot be used"):
        issuance.start(
            rt, a.client(), token=result.session.token, user_id=w.user_id, org_code=w.org
        )


def test_closing_the_issuance_link_ends_the_issuance_key(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    w = p.world(rt, operator, engine)
    reader, _started = p.start_issuance(rt, w)
    links.close(rt, a.client(), token=w.ra_token, link_id=reader.link_id)
    with pytest.raises(LinkClosed):
        reader.send("00200080")


def test_the_api_signs_with_keys_issued_through_pcsc(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    from cardvault.services.cards import operations as card_operations

    use = p.issued_and_enrolled(rt, operator, engine)
    digest = bytes(32)
    signed = card_operations.sign(
        rt,
        a.client(),
        card_operations.SignRequest(
            token=use.token,
            session_key=use.session_key,
            key="content-commitment",
            digest=digest,
            passcode=f.STRONG_PASSCODE,
        ),
    )
    assert signed.scheme == "ecdsa"
    ckeys.verify_digest(
        use.personalised.public_keys[Slot.DIGITAL_SIGNATURE],
        signed.signature,
        digest,
        hash_alg="sha256",
        scheme=ckeys.SignatureScheme.ECDSA,
    )


def test_changing_an_issued_card_reopens_its_issuance(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    w = p.world(rt, operator, engine)
    reader, started = p.start_issuance(rt, w)
    p.personalise(rt, reader, started.serial)
    assert reader.authenticate(p.NEW_MANAGEMENT_KEY) == Sw.SUCCESS
    public = reader.generate(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048)
    assert _card(rt, started.serial).status == "blank"
    issuer = ca.load(rt)
    cert = cx509.issue_card_certificate(
        ca_key=issuer.key,
        ca_cert=issuer.cert,
        subject=x509.Name.from_rfc4514_string("CN=Hana Holder again"),
        public_key=public,
        usage=cx509.CertUsage.AUTHENTICATION,
        now=rt.clock(),
    )
    assert reader.put_certificate(Slot.PIV_AUTHENTICATION, cx509.certificate_to_der(cert)) == 0x9000
    card = _card(rt, started.serial)
    assert card.status == "issued"
    statuses = {c.subject: c.status for c in cards.show(rt, started.serial).certificates}
    assert statuses["CN=Hana Holder again"] == "valid"
    assert "replaced" in statuses.values()
    actions = p.card_actions(rt, card.id)
    assert actions.count("card.issued") == 2
    assert "card.issuance_reopened" in actions


def test_revoking_a_card_shreds_its_applet_secrets(
    rt: Runtime, operator: Actor, engine: Engine
) -> None:
    from cardvault.services.cards.issuance import revoke_card

    w = p.world(rt, operator, engine)
    reader, started = p.start_issuance(rt, w)
    p.personalise(rt, reader, started.serial)
    revoke_card(rt, operator, started.serial, reason="lost")
    with rt.db() as s:
        assert s.get(PivCard, _card(rt, started.serial).id) is None
        assert s.get(PivLink, reader.link_id) is None
    with pytest.raises(LinkClosed):
        reader.send("00200080")
