"""Using a card through the relay on SQLite and PostgreSQL: PIN, signatures, concurrency."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import select
from tests.support import auth as a
from tests.support import piv_service as p

from cardvault.card.apdu import Sw
from cardvault.card.piv import Algorithm, ObjectId, Slot, load_state
from cardvault.errors import PermissionDenied
from cardvault.services.piv import answers, recheck
from cardvault.services.piv import reader_links as links
from cardvault.services.piv.errors import LinkClosed, NoPivApplet, StaleRequest
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.errors import SessionInvalid
from cardvault.services.signin.kdf_gate import KdfGate
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, PivCard, PivLink

DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")


@pytest.fixture
def engine(rt: Runtime) -> Engine:
    return Engine(rt)


@pytest.fixture
def use(rt: Runtime, operator: Actor, engine: Engine) -> p.InUse:
    return p.issued_and_enrolled(rt, operator, engine)


def _pkcs1_block(message: bytes) -> bytes:
    """What OpenSC sends for CKM_SHA256_RSA_PKCS: the full PKCS#1 v1.5 block (RFC 8017)."""
    payload = DIGEST_INFO_SHA256 + hashlib.sha256(message).digest()
    return b"\x00\x01" + b"\xff" * (256 - 3 - len(payload)) + b"\x00" + payload


def _pin_tries(rt: Runtime, card_id: str) -> int:
    with rt.db() as s:
        piv = s.get(PivCard, card_id)
        assert piv is not None
        return load_state(piv.state.encode()).pin_tries.left


def _events(rt: Runtime, card_id: str, action: str) -> list[AuditEvent]:
    with rt.db() as s:
        return list(
            s.scalars(
                select(AuditEvent).where(AuditEvent.card_id == card_id, AuditEvent.action == action)
            )
        )


def test_a_9a_signature_needs_the_pin_and_verifies(rt: Runtime, use: p.InUse) -> None:
    block = _pkcs1_block(b"log me in")
    _data, sw = use.reader.sign(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048, block)
    assert sw == Sw.SECURITY_STATUS_NOT_SATISFIED
    assert use.reader.verify() == Sw.SUCCESS
    data, sw = use.reader.sign(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048, block)
    assert sw == Sw.SUCCESS
    signature = data[8:]  # 7C 82 01 04 82 82 01 00 <256 bytes>
    public = use.personalised.public_keys[Slot.PIV_AUTHENTICATION]
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, b"log me in", padding.PKCS1v15(), hashes.SHA256())
    signed = _events(rt, use.holder.card.card_id, "card.signed")
    assert [e.outcome for e in signed] == ["failure", "success"]
    assert signed[1].details["slot"] == "9a"
    assert signed[1].details["input_sha256"] == hashlib.sha256(block).hexdigest()


def test_9c_needs_the_pin_before_every_signature(use: p.InUse) -> None:
    digest = hashlib.sha256(b"a prescription").digest()
    assert use.reader.verify() == Sw.SUCCESS
    data, sw = use.reader.sign(Slot.DIGITAL_SIGNATURE, Algorithm.ECC_P256, digest)
    assert sw == Sw.SUCCESS
    _, again = use.reader.sign(Slot.DIGITAL_SIGNATURE, Algorithm.ECC_P256, digest)
    assert again == Sw.SECURITY_STATUS_NOT_SATISFIED
    public = use.personalised.public_keys[Slot.DIGITAL_SIGNATURE]
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(data[4:], b"a prescription", ec.ECDSA(hashes.SHA256()))


def test_card_administration_is_refused_in_a_holders_session(use: p.InUse) -> None:
    assert use.reader.authenticate(p.NEW_MANAGEMENT_KEY) == Sw.SECURITY_STATUS_NOT_SATISFIED
    assert use.reader.authenticate() == Sw.SECURITY_STATUS_NOT_SATISFIED
    body = bytes.fromhex("5c035fc105") + bytes.fromhex("5300")
    assert use.reader.put_data(body) == Sw.SECURITY_STATUS_NOT_SATISFIED


def test_wrong_pins_count_down_are_audited_and_a_right_one_resets(
    rt: Runtime, use: p.InUse
) -> None:
    card_id = use.holder.card.card_id
    assert use.reader.verify(b"11112222") == Sw.retries(2)
    assert use.reader.verify(b"11112222") == Sw.retries(1)
    assert _pin_tries(rt, card_id) == 1
    failures = _events(rt, card_id, "piv.verify")
    assert [e.details["attempts_left"] for e in failures] == [2, 1]
    assert all(e.reason == "incorrect card PIN" for e in failures)
    assert "24681357" not in str([e.details for e in failures])
    assert use.reader.verify() == Sw.SUCCESS
    assert _pin_tries(rt, card_id) == 3


def test_concurrent_wrong_pins_through_several_readers_are_all_counted(
    rt: Runtime, use: p.InUse
) -> None:
    readers = [use.reader] + [p.open_reader(rt, use.token, use.session_key) for _ in range(3)]
    start = threading.Barrier(len(readers))

    def guess(reader: p.Reader) -> int:
        start.wait()
        return reader.verify(b"99990000")

    with ThreadPoolExecutor(len(readers)) as pool:
        answers = sorted(pool.map(guess, readers))
    assert answers == sorted([Sw.retries(2), Sw.retries(1), Sw.retries(0), Sw.AUTH_METHOD_BLOCKED])
    assert _pin_tries(rt, use.holder.card.card_id) == 0
    assert len(_events(rt, use.holder.card.card_id, "piv.verify")) == 3
    assert use.reader.verify() == Sw.AUTH_METHOD_BLOCKED


def test_the_puk_unblocks_the_pin(rt: Runtime, use: p.InUse) -> None:
    for _ in range(3):
        use.reader.verify(b"99990000")
    assert use.reader.verify() == Sw.AUTH_METHOD_BLOCKED
    reset = bytes.fromhex("002c008010") + p.pad(p.PUK) + p.pad(b"55554444")
    assert use.reader.sw(reset) == Sw.SUCCESS
    assert use.reader.verify(b"55554444") == Sw.SUCCESS
    assert _events(rt, use.holder.card.card_id, "piv.pin_reset")


def test_a_pin_verified_in_one_reader_does_not_open_another(rt: Runtime, use: p.InUse) -> None:
    other = p.open_reader(rt, use.token, use.session_key)
    assert use.reader.verify() == Sw.SUCCESS
    block = _pkcs1_block(b"x")
    _, sw = other.sign(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048, block)
    assert sw == Sw.SECURITY_STATUS_NOT_SATISFIED
    assert other.sw("00200080") == Sw.retries(3)


def test_power_up_forgets_the_verified_pin(use: p.InUse) -> None:
    assert use.reader.verify() == Sw.SUCCESS
    assert use.reader.sw("00200080") == Sw.SUCCESS
    use.reader.power_up = True
    assert use.reader.sw("00200080") == Sw.retries(3)


def test_a_repeated_request_is_answered_not_executed_again(rt: Runtime, use: p.InUse) -> None:
    wrong = bytes.fromhex("0020008008") + p.pad(b"10203040")
    first = use.reader.send(wrong)
    again = use.reader.send(wrong, seq=use.reader.seq)
    assert first == again == Sw.retries(2).to_bytes(2, "big")
    assert _pin_tries(rt, use.holder.card.card_id) == 2
    with pytest.raises(StaleRequest):
        use.reader.send(wrong, seq=use.reader.seq - 1)


def test_logout_removes_the_card(rt: Runtime, use: p.InUse) -> None:
    card_sessions.logout(rt, a.client(), use.token)
    with rt.db() as s:
        assert s.scalar(select(PivLink)) is None
    with pytest.raises(SessionInvalid):
        use.reader.send("00200080")
    assert not links.status(rt, token=use.token, link_id=use.reader.link_id).alive


def test_link_status_does_not_restart_the_idle_timer(rt: Runtime, use: p.InUse) -> None:
    with rt.db() as s:
        before = s.scalar(
            select(card_sessions.CardSession.idle_expires_at).where(
                card_sessions.CardSession.token_hash == card_sessions.token_hash(use.token)
            )
        )
    found = links.status(rt, token=use.token, link_id=use.reader.link_id)
    assert found.alive
    assert found.idle_expires_at == before


def test_the_link_carries_the_public_objects(rt: Runtime, use: p.InUse) -> None:
    link = links.open_use_link(rt, a.client(), token=use.token, session_key=use.session_key)
    cert = link.objects[ObjectId.CERT_PIV_AUTHENTICATION]
    assert cert is not None
    assert use.personalised.certificates[Slot.PIV_AUTHENTICATION] in cert
    assert link.objects[ObjectId.CERT_KEY_MANAGEMENT] is None
    assert link.objects[ObjectId.DISCOVERY] is not None
    assert link.constant[bytes.fromhex("00a4040006a00000000101")] == b"\x6a\x82"
    assert link.constant[bytes.fromhex("00a4040005a000000308")][:1] == b"\x61"
    assert set(link.constant) == set(links.PROBES)


def test_no_link_for_another_card_an_ra_session_or_a_wrong_key(
    rt: Runtime, operator: Actor, engine: Engine, use: p.InUse
) -> None:
    with pytest.raises(PermissionDenied, match="cannot be used"):
        links.open_use_link(
            rt, a.client(), token=use.token, session_key=use.session_key, serial="CV0000000000"
        )
    with pytest.raises(SessionInvalid):
        links.open_use_link(rt, a.client(), token=use.token, session_key=bytes(32))
    ra = p.world(rt, operator, engine, code="ORG2")
    with pytest.raises(PermissionDenied, match="RA session"):
        links.open_use_link(rt, a.client(), token=ra.ra_token, session_key=bytes(32))


def test_a_card_issued_without_pcsc_needs_a_card_pin_before_it_goes_in(
    rt: Runtime, operator: Actor, engine: Engine, use: p.InUse
) -> None:
    plain = a.holder(rt, operator, use.holder.card.org)
    result = a.login(engine, plain, code=plain.code())
    assert result.session is not None
    with pytest.raises(NoPivApplet, match="no card PIN yet"):
        links.open_use_link(
            rt, a.client(), token=result.session.token, session_key=result.session_key
        )


def test_a_wrong_session_key_is_refused(use: p.InUse) -> None:
    thief = p.Reader(
        rt=use.reader.rt,
        mode=use.reader.mode,
        token=use.token,
        key=bytes(32),
        link_id=use.reader.link_id,
    )
    with pytest.raises(SessionInvalid):
        thief.send("00200080")
    with pytest.raises(LinkClosed):
        p.Reader(
            rt=use.reader.rt,
            mode=use.reader.mode,
            token=use.token,
            key=use.session_key,
            link_id="nope",
        ).send("00200080")


class CountingGate(KdfGate):
    """The real gate, counting the Argon2id runs it admits."""

    def __init__(self) -> None:
        super().__init__()
        self.runs = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.runs += 1
        with super().slot():
            yield


def test_the_pin_just_verified_on_a_link_is_rechecked_without_argon2(
    rt: Runtime, use: p.InUse
) -> None:
    gate = rt.kdf_gate = CountingGate()
    assert use.reader.verify() == Sw.SUCCESS
    assert gate.runs == 1
    use.reader.power_up = True
    assert use.reader.verify() == Sw.SUCCESS
    assert gate.runs == 1
    assert use.reader.verify(b"12121212") == Sw.retries(2)
    assert gate.runs == 2
    other = p.open_reader(rt, use.token, use.session_key)
    assert other.verify() == Sw.SUCCESS
    assert gate.runs == 3


def test_a_pin_change_or_time_ends_the_recheck(rt: Runtime, use: p.InUse) -> None:
    gate = rt.kdf_gate = CountingGate()
    assert use.reader.verify() == Sw.SUCCESS
    assert use.reader.change(0x80, p.PIN, b"86420975") == Sw.SUCCESS
    runs = gate.runs
    assert use.reader.verify(p.PIN) == Sw.retries(2)
    assert gate.runs == runs + 1
    assert use.reader.verify(b"86420975") == Sw.SUCCESS
    later = rt.clock() + recheck.TTL
    rt.clock = lambda: later
    runs = gate.runs
    assert use.reader.verify(b"86420975") == Sw.SUCCESS
    assert gate.runs == runs + 1


def test_the_recheck_value_is_sealed_and_bound_to_its_link(rt: Runtime, use: p.InUse) -> None:
    assert use.reader.verify() == Sw.SUCCESS
    with rt.db() as s:
        link = s.get(PivLink, use.reader.link_id)
        assert link is not None
        assert link.pin_recheck is not None
        blob = link.pin_recheck
    assert hashlib.sha256(p.pad(p.PIN)).digest() not in blob
    kept = recheck.PinRecheck.load(
        rt.master_key, link_id="another", caller_key=use.session_key, blob=blob, now=rt.clock()
    )
    assert kept.kept is None


def test_chain_parts_sent_together_stop_at_the_first_refused_part(
    rt: Runtime, use: p.InUse
) -> None:
    from cardvault.services.piv.relay import RelayRequest, relay

    assert use.reader.verify() == Sw.SUCCESS
    block = b"\x00\x01" + b"\xff" * 202 + b"\x00" + bytes(51)
    body = bytes.fromhex("7c820106820081820100") + block
    head, rest = body[:255], body[255:]
    good = (bytes.fromhex("1087079aff") + head,)
    final = bytes.fromhex("0087079a") + bytes((len(rest),)) + rest

    def send(chain: tuple[bytes, ...]) -> bytes:
        use.reader.seq += 1
        request = RelayRequest(
            mode=use.reader.mode,
            token=use.token,
            key=use.session_key,
            link_id=use.reader.link_id,
            seq=use.reader.seq,
            apdu=final,
            chain=chain,
            drain=True,
        )
        return relay(rt, a.client(), request).response

    signed = send(good)
    assert signed[-2:] == b"\x90\x00"
    assert len(signed) == 2 + 8 + 256
    assert send((bytes.fromhex("1087079aff") + head[:-1],))[-2:] == b"\x67\x00"


def _standing(reader: p.Reader) -> dict[bytes, bytes]:
    assert reader.last is not None
    return reader.last.standing


def test_the_status_of_a_verified_pin_stands_until_the_next_request(use: p.InUse) -> None:
    """The connector may answer the PIN status query itself while the PIN is verified on the
    link; the service says so with every answer, and never while it is not."""
    verified = dict.fromkeys(answers.STATUS_QUERIES, b"\x90\x00")
    assert use.reader.sw("00200080") == Sw.retries(3)
    assert _standing(use.reader) == {}
    assert use.reader.verify() == Sw.SUCCESS
    assert _standing(use.reader) == verified
    _, sw = use.reader.sign(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048, _pkcs1_block(b"x"))
    assert sw == Sw.SUCCESS
    assert _standing(use.reader) == verified
    assert use.reader.sw("00200080") == Sw.SUCCESS  # what the connector answered, exactly
    assert use.reader.sw("0020ff80") == Sw.SUCCESS  # forget the verified PIN
    assert _standing(use.reader) == {}
    assert use.reader.verify(b"10203040") == Sw.retries(2)
    assert _standing(use.reader) == {}


def test_nothing_stands_after_power_up_or_a_wrong_pin(use: p.InUse) -> None:
    assert use.reader.verify() == Sw.SUCCESS
    use.reader.power_up = True
    assert use.reader.sw("00cb3fff035c017e00") == Sw.SUCCESS
    assert _standing(use.reader) == {}
    assert use.reader.verify() == Sw.SUCCESS
    assert use.reader.verify(b"10203040") == Sw.retries(2)
    assert _standing(use.reader) == {}
