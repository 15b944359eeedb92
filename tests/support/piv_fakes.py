"""An in-memory implementation of the PIV applet's ports over real keys (a fake, not a mock),
and the host side of the protocol that tests play: padding a PIN, authenticating with the
management key. Used by the unit tests and, until the service is wired, by the PC/SC tests."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from cardvault.card import tlv
from cardvault.card.apdu import CardError, Sw
from cardvault.card.piv import (
    DEFAULT_MANAGEMENT_KEY,
    Algorithm,
    PinRef,
    PivState,
    Slot,
    WrongReferenceData,
    process,
)
from cardvault.card.piv.asymmetric import GENERATABLE
from cardvault.crypto.keys import (
    PrivateKey,
    generate_private_key,
    public_key_der,
)
from cardvault.crypto.piv_keys import ecdh_shared_secret, ecdsa_sign_hash, rsa_private_block
from cardvault.crypto.piv_mgmt import BlockCipher, ecb_decrypt, ecb_encrypt

DEFAULT_PIN = b"123456"
DEFAULT_PUK = b"12345678"


def transmit(send: Callable[[bytes | str], bytes], apdu: bytes | str) -> tuple[bytes, int]:
    """Send, then follow 61xx with GET RESPONSE like a PC/SC client; (data, sw)."""
    answer = send(apdu)
    data = answer[:-2]
    while answer[-2] == 0x61:
        answer = send(bytes((0x00, 0xC0, 0x00, 0x00, answer[-1])))
        data += answer[:-2]
    return data, int.from_bytes(answer[-2:], "big")


def pad(value: bytes) -> bytes:
    """A PIN or PUK as PIV sends it: 8 bytes, padded with FF."""
    return value.ljust(8, b"\xff")


def verify_apdu(pin: bytes = DEFAULT_PIN) -> bytes:
    """VERIFY of the PIV PIN, as OpenSC and yubico-piv-tool send it."""
    return bytes.fromhex("0020008008") + pad(pin)


@dataclass
class InMemoryPorts:
    """The card's secrets in a dict; every operation on a key is recorded in ``used``."""

    references: dict[PinRef, bytes] = field(
        default_factory=lambda: {PinRef.PIV_PIN: pad(DEFAULT_PIN), PinRef.PUK: pad(DEFAULT_PUK)}
    )
    keys: dict[Slot, PrivateKey] = field(default_factory=dict)
    management: tuple[Algorithm, bytes] | None = None
    used: list[tuple[str, Slot]] = field(default_factory=list)

    def random_bytes(self, count: int) -> bytes:
        return secrets.token_bytes(count)

    def verify_reference(self, reference: PinRef, value: bytes) -> None:
        if not hmac.compare_digest(value, self.references[reference]):
            raise WrongReferenceData()

    def change_reference(self, reference: PinRef, value: bytes) -> None:
        self.references[reference] = value

    def management_key(self, algorithm: Algorithm) -> bytearray:
        if self.management is None or self.management[0] is not algorithm:
            raise CardError(Sw.CONDITIONS_NOT_SATISFIED, "no management key of that algorithm")
        return bytearray(self.management[1])

    def set_management_key(self, algorithm: Algorithm, key: bytes) -> None:
        self.management = (algorithm, bytes(key))

    def generate_key(self, slot: Slot, algorithm: Algorithm) -> bytes:
        key = generate_private_key(GENERATABLE[algorithm])
        self.keys[slot] = key
        return public_key_der(key)

    def sign(self, slot: Slot, algorithm: Algorithm, data: bytes) -> bytes:
        self.used.append(("sign", slot))
        key = self.keys[slot]
        return rsa_private_block(key, data) if algorithm.is_rsa else ecdsa_sign_hash(key, data)

    def decrypt(self, slot: Slot, algorithm: Algorithm, block: bytes) -> bytes:
        self.used.append(("decrypt", slot))
        return rsa_private_block(self.keys[slot], block)

    def ecdh(self, slot: Slot, algorithm: Algorithm, peer_point: bytes) -> bytes:
        self.used.append(("ecdh", slot))
        return ecdh_shared_secret(self.keys[slot], peer_point)


@dataclass
class Card:
    """A card for tests: state plus ports, answering hex APDUs."""

    state: PivState
    ports: InMemoryPorts = field(default_factory=InMemoryPorts)

    def send(self, apdu: bytes | str) -> bytes:
        raw = bytes.fromhex(apdu) if isinstance(apdu, str) else apdu
        self.state, answer = process(self.state, raw, self.ports)
        return answer

    def transmit(self, apdu: bytes | str) -> tuple[bytes, int]:
        return transmit(self.send, apdu)

    def install_key(self, slot: Slot, algorithm: Algorithm) -> None:
        """Put a key in a slot without the management key (test set-up only)."""
        self.ports.generate_key(slot, algorithm)
        self.state = self.state.with_key(slot, algorithm)

    def authenticate(
        self, key: bytes = DEFAULT_MANAGEMENT_KEY, algorithm: Algorithm = Algorithm.TDES
    ) -> int:
        """Mutual management-key authentication as yubico-piv-tool does it; returns the SW."""
        cipher = BlockCipher.TDES if algorithm is Algorithm.TDES else BlockCipher.AES
        block = algorithm.block_bytes
        witness = self.send(bytes((0, 0x87, algorithm, 0x9B, 4, 0x7C, 2, 0x80, 0)))[4:-2]
        challenge = secrets.token_bytes(block)
        body = tlv.encode(0x80, ecb_decrypt(cipher, key, witness)) + tlv.encode(0x81, challenge)
        answer = self.send(bytes((0, 0x87, algorithm, 0x9B)) + _lc(tlv.encode(0x7C, body)))
        sw = int.from_bytes(answer[-2:], "big")
        if sw == Sw.SUCCESS:
            assert answer[4:-2] == ecb_encrypt(cipher, key, challenge)
        return sw


def _lc(data: bytes) -> bytes:
    return bytes((len(data),)) + data
