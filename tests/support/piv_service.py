"""PC/SC channel tests without pcscd: a connector's view of the service relay, in-process.

``Reader`` sends APDUs through ``relay()`` exactly as the HTTP endpoint does (sequence numbers,
power-up flag), and plays the host side of PIV the way yubico-piv-tool and OpenSC do:
management-key authentication, key generation, certificate import, PIN and PUK changes.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select

from cardvault.card import tlv
from cardvault.card.apdu import Sw
from cardvault.card.piv import DEFAULT_MANAGEMENT_KEY, Algorithm, Slot
from cardvault.card.piv import objects as piv_objects
from cardvault.crypto import keys as ckeys
from cardvault.crypto import x509 as cx509
from cardvault.crypto.piv_mgmt import BlockCipher, ecb_decrypt, ecb_encrypt
from cardvault.services.cards import enrolment, methods
from cardvault.services.directory import registry as directory
from cardvault.services.piv import issuance
from cardvault.services.piv import reader_links as links
from cardvault.services.piv.ports import Mode
from cardvault.services.piv.relay import RelayAnswer, RelayRequest, relay
from cardvault.services.pki import ca
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Card
from tests.support import auth as a
from tests.support import factories as f
from tests.support import piv_fakes
from tests.support.piv_fakes import DEFAULT_PIN, DEFAULT_PUK, pad

NEW_MANAGEMENT_KEY = bytes.fromhex("8d6e2f41a3c59b07d1e4f2a6c38b5d90e7a1f4c26b3d8e05")
PIN = b"24681357"
PUK = b"97531864"


def verify_apdu(pin: bytes = PIN) -> bytes:
    """VERIFY of the personalised card's PIN (the fakes' default is the blank card's)."""
    return piv_fakes.verify_apdu(pin)


@dataclass
class Reader:
    """One connector: a link, its sequence numbers, and the APDUs a tool would send."""

    rt: Runtime
    mode: Mode
    token: str
    key: bytes
    link_id: str
    seq: int = 0
    power_up: bool = True
    actor: Actor = field(default_factory=a.client)
    #: the service's last answer, as the connector sees it
    last: RelayAnswer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, apdu: bytes | str, *, seq: int | None = None) -> bytes:
        raw = bytes.fromhex(apdu) if isinstance(apdu, str) else apdu
        with self._lock:
            if seq is None:
                self.seq += 1
            req = RelayRequest(
                mode=self.mode,
                token=self.token,
                key=self.key,
                link_id=self.link_id,
                seq=seq if seq is not None else self.seq,
                apdu=raw,
                power_up=self.power_up,
            )
            self.power_up = False
            self.last = relay(self.rt, self.actor, req)
            return self.last.response

    def transmit(self, apdu: bytes | str) -> tuple[bytes, int]:
        return piv_fakes.transmit(self.send, apdu)

    def sw(self, apdu: bytes | str) -> int:
        return self.transmit(apdu)[1]

    def verify(self, pin: bytes = PIN) -> int:
        return self.sw(bytes.fromhex("0020008008") + pad(pin))

    def authenticate(self, key: bytes = DEFAULT_MANAGEMENT_KEY) -> int:
        """Mutual 3DES management-key authentication, as yubico-piv-tool 2.2 does it."""
        witness = self.send(bytes((0, 0x87, Algorithm.TDES, 0x9B, 4, 0x7C, 2, 0x80, 0)))
        if witness[-2:] != b"\x90\x00":
            return int.from_bytes(witness[-2:], "big")
        challenge = secrets.token_bytes(8)
        body = tlv.encode(0x80, ecb_decrypt(BlockCipher.TDES, key, witness[4:-2]))
        body += tlv.encode(0x81, challenge)
        data = tlv.encode(0x7C, body)
        answer = self.send(bytes((0, 0x87, Algorithm.TDES, 0x9B, len(data))) + data)
        sw = int.from_bytes(answer[-2:], "big")
        if sw == Sw.SUCCESS:
            assert answer[4:-2] == ecb_encrypt(BlockCipher.TDES, key, challenge)
        return sw

    def set_management_key(self, key: bytes = NEW_MANAGEMENT_KEY) -> int:
        return self.sw(bytes((0, 0xFF, 0xFF, 0xFF, 27, Algorithm.TDES, 0x9B, 24)) + key)

    def generate(self, slot: Slot, algorithm: Algorithm) -> ckeys.PublicKey:
        data, sw = self.transmit(bytes((0, 0x47, 0, slot, 5, 0xAC, 3, 0x80, 1, algorithm)))
        assert sw == Sw.SUCCESS, hex(sw)
        parts = tlv.decode_map(tlv.decode_single(data, 0x7F49))
        if 0x86 in parts:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), parts[0x86])
        n, e = (int.from_bytes(parts[t], "big") for t in (0x81, 0x82))
        return rsa.RSAPublicNumbers(e, n).public_key()

    def put_certificate(self, slot: Slot, der: bytes) -> int:
        tag = int(slot.certificate_object).to_bytes(3, "big")
        body = tlv.encode(0x5C, tag) + tlv.encode(0x53, piv_objects.certificate_container(der))
        return self.put_data(body)

    def put_data(self, body: bytes) -> int:
        """PUT DATA with command chaining (255-byte chunks), as both tools send it."""
        chunks = [body[i : i + 255] for i in range(0, len(body), 255)]
        sw = 0
        for number, chunk in enumerate(chunks):
            cla = 0x10 if number < len(chunks) - 1 else 0x00
            sw = self.sw(bytes((cla, 0xDB, 0x3F, 0xFF, len(chunk))) + chunk)
        return sw

    def change(self, reference: int, old: bytes, new: bytes) -> int:
        return self.sw(bytes((0, 0x24, 0, reference, 16)) + pad(old) + pad(new))

    def sign(self, slot: Slot, algorithm: Algorithm, data: bytes) -> tuple[bytes, int]:
        body = tlv.encode(0x7C, tlv.encode(0x82, b"") + tlv.encode(0x81, data))
        if len(body) <= 255:
            return self.transmit(bytes((0, 0x87, algorithm, slot, len(body))) + body)
        head, rest = body[:255], body[255:]
        sw = self.sw(bytes((0x10, 0x87, algorithm, slot, 255)) + head)
        assert sw == Sw.SUCCESS
        return self.transmit(bytes((0, 0x87, algorithm, slot, len(rest))) + rest)


@dataclass(frozen=True, kw_only=True)
class World:
    """An organisation with an RA (signed in, issuing role chosen) and a person to issue to."""

    org: str
    ra: a.HolderFixture
    ra_token: str
    user_id: str
    email: str


def world(rt: Runtime, operator: Actor, engine: Engine, code: str = "ORG1") -> World:
    org = a.open_org(rt, operator, code)
    ra = a.holder(rt, operator, org, forename="Rana", surname="Admin")
    directory.grant_role(rt, operator, user_id=ra.card.user_id, org_code=org, role="ra_agent")
    result = a.login(engine, ra, code=ra.code(), purpose="ra")
    assert result.session is not None
    token = result.session.token
    card_sessions.select_role(rt, a.client(), token, org_code=org, role="ra_agent")
    email = f"holder{secrets.token_hex(4)}@example.org"
    uid = f.person(rt, operator, org, forename="Hana", surname="Holder", email=email)
    return World(org=org, ra=ra, ra_token=token, user_id=uid, email=email)


def start_issuance(rt: Runtime, w: World) -> tuple[Reader, issuance.IssuanceStarted]:
    started = issuance.start(rt, a.client(), token=w.ra_token, user_id=w.user_id, org_code=w.org)
    reader = Reader(
        rt=rt,
        mode=Mode.ISSUANCE,
        token=w.ra_token,
        key=started.issuance_key,
        link_id=started.link_id,
    )
    return reader, started


@dataclass(frozen=True, kw_only=True)
class Personalised:
    serial: str
    public_keys: dict[Slot, ckeys.PublicKey]
    certificates: dict[Slot, bytes]


SLOTS = (
    (Slot.PIV_AUTHENTICATION, Algorithm.RSA2048, cx509.CertUsage.AUTHENTICATION),
    (Slot.DIGITAL_SIGNATURE, Algorithm.ECC_P256, cx509.CertUsage.CONTENT_COMMITMENT),
)


def personalise(rt: Runtime, reader: Reader, serial: str) -> Personalised:
    """What a card management system does: keys, certificates from the CA, PIN, PUK."""
    assert reader.authenticate() == Sw.SUCCESS
    assert reader.set_management_key() == Sw.SUCCESS
    assert reader.authenticate(NEW_MANAGEMENT_KEY) == Sw.SUCCESS
    issuer = ca.load(rt)
    keys, certs = {}, {}
    for slot, algorithm, usage in SLOTS:
        public = reader.generate(slot, algorithm)
        cert = cx509.issue_card_certificate(
            ca_key=issuer.key,
            ca_cert=issuer.cert,
            subject=x509.Name.from_rfc4514_string(f"CN=Hana Holder {slot.name}"),
            public_key=public,
            usage=usage,
            now=rt.clock(),
        )
        der = cx509.certificate_to_der(cert)
        assert reader.put_certificate(slot, der) == Sw.SUCCESS
        keys[slot], certs[slot] = public, der
    assert reader.change(0x80, DEFAULT_PIN, PIN) == Sw.SUCCESS
    assert reader.change(0x81, DEFAULT_PUK, PUK) == Sw.SUCCESS
    return Personalised(serial=serial, public_keys=keys, certificates=certs)


@dataclass(frozen=True, kw_only=True)
class InUse:
    holder: a.HolderFixture
    reader: Reader
    personalised: Personalised
    token: str
    session_key: bytes


def issued_and_enrolled(
    rt: Runtime,
    operator: Actor,
    engine: Engine,
    *,
    also: Callable[[Reader], None] | None = None,
) -> InUse:
    """Issue through the relay, enrol with the PIN as issuance passcode, add TOTP, sign in,
    and insert the card into a holder's reader link. ``also`` personalises more, at issuance."""
    w = world(rt, operator, engine)
    reader, started = start_issuance(rt, w)
    done = personalise(rt, reader, started.serial)
    if also is not None:
        also(reader)
    links.close(rt, a.client(), token=w.ra_token, link_id=reader.link_id)
    enrolment.enrol(rt, operator, f.enrol_request(started.serial, issuance_passcode=PIN.decode()))
    totp = methods.add_totp(rt, operator, serial=started.serial, org_code=w.org)
    card = f.IssuedFixture(
        org=w.org, user_id=w.user_id, serial=started.serial, card_id=_id(rt, started.serial)
    )
    holder = a.HolderFixture(card=card, email=w.email, totp_secret=totp.secret)
    result = a.login(engine, holder, code=holder.code())
    assert result.session is not None
    use = open_reader(rt, result.session.token, result.session_key)
    return InUse(
        holder=holder,
        reader=use,
        personalised=done,
        token=result.session.token,
        session_key=result.session_key,
    )


def open_reader(rt: Runtime, token: str, session_key: bytes) -> Reader:
    link = links.open_use_link(rt, a.client(), token=token, session_key=session_key)
    return Reader(rt=rt, mode=Mode.USE, token=token, key=session_key, link_id=link.link_id)


def _id(rt: Runtime, serial: str) -> str:
    with rt.db() as s:
        card_id = s.scalar(select(Card.id).where(Card.serial == serial))
    assert card_id is not None
    return card_id


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def card_actions(rt: Runtime, card_id: str) -> list[str]:
    """The card's audit actions, oldest first."""
    with rt.db() as s:
        return list(
            s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.card_id == card_id)
                .order_by(AuditEvent.seq)
            )
        )
