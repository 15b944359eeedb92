"""Key-pair instructions: GENERAL AUTHENTICATE with a private key and GENERATE ASYMMETRIC KEY
PAIR (SP 800-73-4 Part 2 §3.2.4, §3.3.2; Appendix A.3-A.5).

The applet decides whether a key may be used -- the slot holds a key of the algorithm in P1,
the PIN was verified, 9C was armed by the VERIFY just before -- and the ports use it.
"""

from __future__ import annotations

from cardvault.card import tlv
from cardvault.card.apdu import CardError, CommandApdu, Sw
from cardvault.card.piv.constants import Algorithm, Slot
from cardvault.card.piv.handlers import (
    Outcome,
    dynamic_response,
    dynamic_template,
    require_management,
    slot_of,
)
from cardvault.card.piv.ports import CardPorts
from cardvault.card.piv.state import PivState
from cardvault.card.piv.verification import management_authenticate
from cardvault.crypto.keys import KeyAlgorithm
from cardvault.crypto.piv_keys import PublicParts, public_parts
from cardvault.errors import InvalidInput

__all__ = ["GENERATABLE", "general_authenticate", "generate_key_pair"]

#: what GENERATE makes: DESIGN §3.1 (RSA-2048 default, RSA-3072 or P-256 by organisation)
GENERATABLE = {
    Algorithm.RSA2048: KeyAlgorithm.RSA2048,
    Algorithm.RSA3072: KeyAlgorithm.RSA3072,
    Algorithm.ECC_P256: KeyAlgorithm.ECP256,
}
_CONTROL_TEMPLATE = 0xAC
_PUBLIC_KEY_TEMPLATE = 0x7F49
_MAX_HASH_BYTES = 64


def general_authenticate(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """Sign, decrypt or agree a key with the key in P2; 9B goes to the management key."""
    if command.p2 == Slot.CARD_MANAGEMENT:
        return management_authenticate(state, command, ports)
    slot = slot_of(command.p2)
    algorithm = _key_algorithm(state, slot, command.p1)
    items = dynamic_template(command.data)
    shape = {tag: len(value) for tag, value in items.items()}
    if shape.get(0x82) != 0 or len(shape) != 2 or not shape.keys() & {0x81, 0x85}:
        raise CardError(Sw.INCORRECT_DATA, "expected 82 00 with 81 (challenge) or 85 (point)")
    agreement = 0x85 in items
    argument = items[0x85] if agreement else items[0x81]
    _check_input(agreement, algorithm, argument)
    state = _authorise_use(state, slot)
    result = _use_key(ports, slot, algorithm, argument, agreement=agreement)
    return Outcome(state=state, data=dynamic_response(0x82, result))


def _key_algorithm(state: PivState, slot: Slot, p1: int) -> Algorithm:
    algorithm = state.key_algorithm(slot)
    if algorithm is None:
        raise CardError(Sw.REFERENCE_NOT_FOUND, "the slot holds no key")
    if p1 != algorithm:
        raise CardError(Sw.INCORRECT_P1P2, "the key in this slot has another algorithm")
    return algorithm


def _check_input(agreement: bool, algorithm: Algorithm, value: bytes) -> None:
    if agreement:
        good = algorithm.is_ec and len(value) == 1 + 2 * algorithm.key_bytes and value[0] == 4
    elif algorithm.is_rsa:
        good = len(value) == algorithm.key_bytes
    else:
        good = 0 < len(value) <= _MAX_HASH_BYTES
    if not good:
        raise CardError(Sw.INCORRECT_DATA, "the input does not fit the key")


def _authorise_use(state: PivState, slot: Slot) -> PivState:
    """The PIN for every key but 9E; for 9C a fresh VERIFY, which this use consumes."""
    if not slot.needs_pin:
        return state
    armed = state.security.pin_always if slot.pin_always else state.security.pin_verified
    if not (armed and state.security.pin_verified):
        raise CardError(Sw.SECURITY_STATUS_NOT_SATISFIED, "verify the PIN first")
    return state.with_security(pin_always=False) if slot.pin_always else state


def _use_key(
    ports: CardPorts, slot: Slot, algorithm: Algorithm, data: bytes, *, agreement: bool
) -> bytes:
    if agreement:
        return ports.ecdh(slot, algorithm, data)
    if algorithm.is_rsa and slot.is_key_management:
        return ports.decrypt(slot, algorithm, data)
    return ports.sign(slot, algorithm, data)


def generate_key_pair(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """GENERATE ASYMMETRIC KEY PAIR: ``AC {80 alg [AA pin policy] [AB touch policy]}``."""
    if command.p1 != 0:
        raise CardError(Sw.INCORRECT_P1P2)
    slot = slot_of(command.p2)
    require_management(state)
    algorithm = _requested_algorithm(command.data)
    spki = ports.generate_key(slot, algorithm)
    parts = _public_parts(spki, algorithm)
    return Outcome(state=state.with_key(slot, algorithm), data=_public_key_template(parts))


def _requested_algorithm(data: bytes) -> Algorithm:
    control = tlv.decode_map(tlv.decode_single(data, _CONTROL_TEMPLATE))
    requested = control.get(0x80, b"")
    if len(requested) != 1 or requested[0] not in {int(alg) for alg in GENERATABLE}:
        raise CardError(Sw.INCORRECT_DATA, "this card generates RSA-2048, RSA-3072 and P-256")
    return Algorithm(requested[0])


def _public_parts(spki: bytes, algorithm: Algorithm) -> PublicParts:
    try:
        parts = public_parts(spki)
    except InvalidInput:
        parts = None
    if parts is None or parts.algorithm is not GENERATABLE[algorithm]:
        raise CardError(Sw.NO_PRECISE_DIAGNOSIS, "the generated key is not what was asked for")
    return parts


def _public_key_template(parts: PublicParts) -> bytes:
    if parts.point:
        return tlv.encode(_PUBLIC_KEY_TEMPLATE, tlv.encode(0x86, parts.point))
    body = tlv.encode(0x81, parts.modulus) + tlv.encode(0x82, parts.exponent)
    return tlv.encode(_PUBLIC_KEY_TEMPLATE, body)
