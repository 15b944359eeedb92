"""Authentication instructions: VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER (SP 800-73-4
Part 2 §3.2.1-3.2.3), management-key GENERAL AUTHENTICATE (Appendix A.1/A.2) and YubiKey's
SET MANAGEMENT KEY.

The applet keeps the retry counters; the ports only say whether a value is right. The default
management key is the applet's own constant and is accepted only while the state says the card
is blank: the first SET MANAGEMENT KEY ends that for good and refuses the default value.
"""

from __future__ import annotations

import hmac
from dataclasses import replace

from cardvault.card.apdu import SHORT_MAX, CardError, CommandApdu, Sw
from cardvault.card.piv.constants import DEFAULT_MANAGEMENT_KEY, Algorithm, PinRef, Slot
from cardvault.card.piv.handlers import (
    Outcome,
    dynamic_response,
    dynamic_template,
    require_management,
    require_p1p2,
)
from cardvault.card.piv.ports import CardPorts, WrongReferenceData
from cardvault.card.piv.state import ChallengeKind, ManagementChallenge, PivState, RetryCounter
from cardvault.crypto.piv_mgmt import BlockCipher, ecb_encrypt

__all__ = [
    "change_reference_data",
    "management_authenticate",
    "reset_retry_counter",
    "set_management_key",
    "verify",
]

REFERENCE_BYTES = 8
_PAD = 0xFF
_RESET_SECURITY = 0xFF


def verify(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """VERIFY the PIV PIN; no data asks for the status, P1=FF forgets a verified PIN."""
    if command.p1 == _RESET_SECURITY and command.p2 == PinRef.PIV_PIN and not command.data:
        return Outcome(state=state.with_security(pin_verified=False, pin_always=False))
    _pin_reference(command)
    if not command.data:
        return Outcome(state=state, sw=_pin_status(state))
    if len(command.data) != REFERENCE_BYTES:
        raise CardError(Sw.INCORRECT_DATA, "a PIN block is 8 bytes")
    state, right = _check(state, ports, PinRef.PIV_PIN, command.data)
    if not right:
        return Outcome(state=state, sw=Sw.retries(state.pin_tries.left))
    return Outcome(state=state.with_security(pin_verified=True, pin_always=True))


def change_reference_data(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """CHANGE REFERENCE DATA of the PIN (P2=80) or PUK (P2=81): old block, then new block."""
    if command.p1 != 0 or command.p2 not in (PinRef.PIV_PIN, PinRef.PUK):
        raise CardError(Sw.INCORRECT_P1P2)
    reference = PinRef(command.p2)
    old, new = _two_blocks(command.data)
    _check_new_value(reference, new)
    state, right = _check(state, ports, reference, old)
    if not right:
        return Outcome(state=state, sw=Sw.retries(_counter(state, reference).left))
    ports.change_reference(reference, new)
    return Outcome(state=state)


def reset_retry_counter(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """RESET RETRY COUNTER: the PUK sets a new PIN and unblocks it."""
    require_p1p2(command, 0x00, PinRef.PIV_PIN)
    puk, new_pin = _two_blocks(command.data)
    _check_new_value(PinRef.PIV_PIN, new_pin)
    state, right = _check(state, ports, PinRef.PUK, puk)
    if not right:
        return Outcome(state=state, sw=Sw.retries(state.puk_tries.left))
    ports.change_reference(PinRef.PIV_PIN, new_pin)
    return Outcome(state=replace(state, pin_tries=state.pin_tries.reset()))


def _pin_reference(command: CommandApdu) -> None:
    if command.p1 != 0:
        raise CardError(Sw.INCORRECT_P1P2)
    if command.p2 != PinRef.PIV_PIN:
        raise CardError(Sw.REFERENCE_NOT_FOUND, "only the PIV PIN is verified here")


def _pin_status(state: PivState) -> int:
    if state.pin_tries.blocked:
        return Sw.AUTH_METHOD_BLOCKED
    if state.security.pin_verified:
        return Sw.SUCCESS
    return Sw.retries(state.pin_tries.left)


def _counter(state: PivState, reference: PinRef) -> RetryCounter:
    return state.puk_tries if reference is PinRef.PUK else state.pin_tries


def _check(
    state: PivState, ports: CardPorts, reference: PinRef, value: bytes
) -> tuple[PivState, bool]:
    """Ask the ports; count a wrong value down, a right one back up. Blocked raises 6983."""
    counter = _counter(state, reference)
    if counter.blocked:
        raise CardError(Sw.AUTH_METHOD_BLOCKED)
    try:
        ports.verify_reference(reference, value)
    except WrongReferenceData:
        counter = counter.failed()
        if reference is PinRef.PIV_PIN:
            state = state.with_security(pin_verified=False, pin_always=False)
        right = False
    else:
        counter = counter.reset()
        right = True
    if reference is PinRef.PUK:
        return replace(state, puk_tries=counter), right
    return replace(state, pin_tries=counter), right


def _two_blocks(data: bytes) -> tuple[bytes, bytes]:
    if len(data) != 2 * REFERENCE_BYTES:
        raise CardError(Sw.INCORRECT_DATA, "expected two 8-byte blocks")
    return data[:REFERENCE_BYTES], data[REFERENCE_BYTES:]


def _check_new_value(reference: PinRef, block: bytes) -> None:
    """A PIN is 6-8 digits, a PUK 6-8 bytes, each padded with FF (Part 2 §2.4.3)."""
    value = block.rstrip(bytes((_PAD,)))
    digits_ok = reference is PinRef.PUK or value.isdigit()
    if not (6 <= len(value) <= REFERENCE_BYTES and digits_ok and _PAD not in value):
        raise CardError(Sw.INCORRECT_DATA, "a new PIN is 6 to 8 digits, a PUK 6 to 8 bytes")


#: how many random bytes one challenge request answers (a client asks again for more)
CHALLENGE_BYTES = 16
_NO_ALGORITHM = 0x00


def management_authenticate(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """GENERAL AUTHENTICATE with 9B: mutual (80 00 / 80 R 81 C) or external (81 00 / 82 E(C));
    with algorithm 00 a bare ``81 00`` asks for random bytes, nothing else (OpenSC's
    ``C_GenerateRandom``, after SP 800-73-3)."""
    items = dynamic_template(command.data)
    if command.p1 == _NO_ALGORITHM and items == {0x81: b""}:
        return Outcome(state=state, data=dynamic_response(0x81, _random(ports, CHALLENGE_BYTES)))
    algorithm = _management_algorithm(state, command.p1)
    block = algorithm.block_bytes
    shape = {tag: len(value) for tag, value in items.items()}
    if shape == {0x80: 0}:
        return _challenge(state, ports, algorithm, ChallengeKind.MUTUAL, tag=0x80)
    if shape == {0x81: 0}:
        return _challenge(state, ports, algorithm, ChallengeKind.EXTERNAL, tag=0x81)
    if shape == {0x80: block, 0x81: block}:
        expected = _pending(state, algorithm, ChallengeKind.MUTUAL)
        _require_same(items[0x80], expected)
        answer = _encrypt(state, ports, items[0x81])
        return Outcome(state=_authenticated(state), data=dynamic_response(0x82, answer))
    if shape == {0x82: block}:
        challenge = _pending(state, algorithm, ChallengeKind.EXTERNAL)
        _require_same(items[0x82], _encrypt(state, ports, challenge))
        return Outcome(state=_authenticated(state))
    raise CardError(Sw.INCORRECT_DATA, "not a management-key authentication step")


def _management_algorithm(state: PivState, p1: int) -> Algorithm:
    if p1 != state.management_algorithm:
        raise CardError(Sw.INCORRECT_P1P2, "the management key has another algorithm")
    return state.management_algorithm


def _challenge(
    state: PivState, ports: CardPorts, algorithm: Algorithm, kind: ChallengeKind, *, tag: int
) -> Outcome:
    value = ports.random_bytes(algorithm.block_bytes)
    pending = ManagementChallenge(kind=kind, algorithm=algorithm, value=value)
    shown = _encrypt(state, ports, value) if kind is ChallengeKind.MUTUAL else value
    next_state = replace(state, challenge=pending).with_security(management_authenticated=False)
    return Outcome(state=next_state, data=dynamic_response(tag, shown))


def _pending(state: PivState, algorithm: Algorithm, kind: ChallengeKind) -> bytes:
    pending = state.challenge
    if pending is None or pending.kind is not kind or pending.algorithm is not algorithm:
        raise CardError(Sw.CONDITIONS_NOT_SATISFIED, "no challenge of this kind is pending")
    return pending.value


def _require_same(given: bytes, expected: bytes) -> None:
    if not hmac.compare_digest(given, expected):
        raise CardError(Sw.SECURITY_STATUS_NOT_SATISFIED, "management key authentication failed")


def _authenticated(state: PivState) -> PivState:
    return replace(state, challenge=None).with_security(management_authenticated=True)


def _encrypt(state: PivState, ports: CardPorts, block: bytes) -> bytes:
    cipher = BlockCipher.TDES if state.management_algorithm is Algorithm.TDES else BlockCipher.AES
    if state.management_key_default:
        return ecb_encrypt(cipher, DEFAULT_MANAGEMENT_KEY, block)
    key = ports.management_key(state.management_algorithm)
    try:
        return ecb_encrypt(cipher, key, block)
    finally:
        key[:] = bytes(len(key))


def set_management_key(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """YubiKey SET MANAGEMENT KEY (``00 FF FF FF|FE`` data ``alg 9B len key``)."""
    if command.p1 != 0xFF or command.p2 not in (0xFF, 0xFE):
        raise CardError(Sw.INCORRECT_P1P2)
    require_management(state)
    algorithm, key = _new_management_key(command.data)
    if hmac.compare_digest(key, DEFAULT_MANAGEMENT_KEY):
        raise CardError(Sw.INCORRECT_DATA, "the default management key cannot be set again")
    ports.set_management_key(algorithm, key)
    changed = replace(state, management_algorithm=algorithm, management_key_default=False)
    return Outcome(state=changed)


def _new_management_key(data: bytes) -> tuple[Algorithm, bytes]:
    if len(data) < 3 or data[1] != Slot.CARD_MANAGEMENT:
        raise CardError(Sw.INCORRECT_DATA, "expected algorithm, 9B, length, key")
    try:
        algorithm = Algorithm(data[0])
    except ValueError:
        raise CardError(Sw.INCORRECT_DATA, "unknown algorithm") from None
    key = data[3:]
    if not algorithm.is_symmetric or len(key) != data[2] or len(key) != algorithm.key_bytes:
        raise CardError(Sw.INCORRECT_DATA, "the key does not fit the algorithm")
    return algorithm, key


def get_challenge(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """GET CHALLENGE (ISO 7816-4 §11.5.3): Le random bytes (8 when Le is absent); nothing is
    remembered, so no later command depends on it."""
    require_p1p2(command, 0, 0)
    wanted = CHALLENGE_BYTES // 2 if command.ne is None else command.ne
    return Outcome(state=state, data=_random(ports, min(wanted, SHORT_MAX)))


def _random(ports: CardPorts, count: int) -> bytes:
    value = ports.random_bytes(count)
    if len(value) != count:
        raise CardError(Sw.NO_PRECISE_DIAGNOSIS, "the random generator failed")
    return value
