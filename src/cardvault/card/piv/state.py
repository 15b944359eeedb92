"""The applet's whole state between two APDUs: immutable, validated, serialisable.

A service keeps one :class:`PivState` per card and hands it back with the next APDU, so
nothing of a card lives in the process between requests. Secrets are not part of it: the
private keys, the PIN/PUK reference data and the management key stay behind the ports.
``__post_init__`` checks every invariant, so a state that exists is a consistent state, and
:func:`load_state` cannot produce anything else either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any, Self

from cardvault.card.piv.constants import Algorithm, ObjectId, Slot
from cardvault.errors import InvalidInput

__all__ = [
    "MAX_CHAIN_BYTES",
    "MAX_OBJECT_BYTES",
    "ChallengeKind",
    "ManagementChallenge",
    "PendingChain",
    "PivState",
    "RetryCounter",
    "SecurityStatus",
    "StateMalformed",
    "dump_state",
    "load_state",
]

MAX_OBJECT_BYTES = 4096
MAX_OBJECTS_TOTAL = 40960
MAX_CHAIN_BYTES = 8192
MAX_RETRIES = 15


class StateMalformed(InvalidInput):
    code = "piv_state_malformed"


class ChallengeKind(IntEnum):
    MUTUAL = 1  # the card sent a witness E(R) and waits for R
    EXTERNAL = 2  # the card sent a challenge C and waits for E(C)


@dataclass(frozen=True, kw_only=True)
class ManagementChallenge:
    """A management-key challenge in flight (SP 800-73-4 Part 2 Appendix A.1/A.2)."""

    kind: ChallengeKind
    algorithm: Algorithm
    value: bytes

    def __post_init__(self) -> None:
        _require(self.algorithm.is_symmetric, "a challenge belongs to a block cipher")
        _require(len(self.value) == self.algorithm.block_bytes, "a challenge is one block")


@dataclass(frozen=True, kw_only=True)
class PendingChain:
    """The commands of a chain received so far (ISO 7816-4 §5.4.2)."""

    ins: int
    p1: int
    p2: int
    data: bytes

    def __post_init__(self) -> None:
        _require(len(self.data) <= MAX_CHAIN_BYTES, "a command chain is too long")
        _require(all(0 <= b <= 0xFF for b in (self.ins, self.p1, self.p2)), "bad header")


@dataclass(frozen=True, kw_only=True)
class RetryCounter:
    left: int
    limit: int = 3

    def __post_init__(self) -> None:
        _require(0 <= self.left <= self.limit <= MAX_RETRIES, "a retry counter is out of range")

    @property
    def blocked(self) -> bool:
        return self.left == 0

    def failed(self) -> RetryCounter:
        return replace(self, left=max(self.left - 1, 0))

    def reset(self) -> RetryCounter:
        return replace(self, left=self.limit)


@dataclass(frozen=True, kw_only=True)
class SecurityStatus:
    """What has been proved since power-up (SP 800-73-4 Part 1 §5.4)."""

    pin_verified: bool = False
    #: armed by a successful VERIFY, consumed by one use of a PIN-always key (9C)
    pin_always: bool = False
    management_authenticated: bool = False


@dataclass(frozen=True, kw_only=True)
class PivState:
    """One card, between two APDUs."""

    serial: int
    #: data objects by tag: the content of their ``53`` container
    objects: tuple[tuple[int, bytes], ...] = ()
    #: which asymmetric slots hold a key, and of which algorithm
    keys: tuple[tuple[Slot, Algorithm], ...] = ()
    management_algorithm: Algorithm = Algorithm.TDES
    #: blank card: the well-known default management key is accepted. Set False for good by the
    #: first SET MANAGEMENT KEY; from then on the ports hold the key.
    management_key_default: bool = True
    pin_tries: RetryCounter = field(default_factory=lambda: RetryCounter(left=3))
    puk_tries: RetryCounter = field(default_factory=lambda: RetryCounter(left=3))
    security: SecurityStatus = field(default_factory=SecurityStatus)
    #: response data still waiting for GET RESPONSE
    pending_response: bytes = b""
    pending_chain: PendingChain | None = None
    challenge: ManagementChallenge | None = None

    def __post_init__(self) -> None:
        _require(0 <= self.serial < 1 << 32, "the serial is a 32-bit number")
        _require(self.management_algorithm.is_symmetric, "management keys are block ciphers")
        _require(
            not self.management_key_default or self.management_algorithm is Algorithm.TDES,
            "the default management key is 3DES",
        )
        _check_objects(self.objects)
        _check_keys(self.keys)
        _require(len(self.pending_response) <= MAX_CHAIN_BYTES, "pending response too long")

    def object(self, tag: int) -> bytes | None:
        return dict(self.objects).get(tag)

    def with_object(self, tag: int, content: bytes | None) -> Self:
        """A copy with the object written (or deleted, when ``content`` is None)."""
        kept = dict(self.objects)
        kept.pop(tag, None)
        if content is not None:
            kept[tag] = content
        return replace(self, objects=tuple(sorted(kept.items())))

    def key_algorithm(self, slot: Slot) -> Algorithm | None:
        return dict(self.keys).get(slot)

    def with_key(self, slot: Slot, algorithm: Algorithm) -> Self:
        kept = {**dict(self.keys), slot: algorithm}
        return replace(self, keys=tuple(sorted(kept.items())))

    def with_security(self, **changes: bool) -> Self:
        return replace(self, security=replace(self.security, **changes))

    def powered_up(self) -> Self:
        """After power-up or reset: nothing is proved, nothing is pending (ISO 7816-4 §5.1)."""
        return replace(
            self,
            security=SecurityStatus(),
            pending_response=b"",
            pending_chain=None,
            challenge=None,
        )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise StateMalformed(message)


def _check_objects(objects: tuple[tuple[int, bytes], ...]) -> None:
    tags = [tag for tag, _ in objects]
    _require(tags == sorted(set(tags)), "objects are sorted by tag and unique")
    _require(all(ObjectId.writable(tag) for tag in tags), "an object tag is not writable")
    sizes = [len(content) for _, content in objects]
    _require(all(size <= MAX_OBJECT_BYTES for size in sizes), "an object is too large")
    _require(sum(sizes) <= MAX_OBJECTS_TOTAL, "the card's object memory is full")


def _check_keys(keys: tuple[tuple[Slot, Algorithm], ...]) -> None:
    slots = [slot for slot, _ in keys]
    _require(slots == sorted(set(slots)), "key slots are sorted and unique")
    _require(all(slot.is_asymmetric for slot in slots), "9B holds no key pair")
    _require(all(not alg.is_symmetric for _, alg in keys), "key pairs are RSA or EC")


def dump_state(state: PivState) -> bytes:
    """JSON (bytes as hex), for a service to store between APDUs."""
    return json.dumps(_plain(state), sort_keys=True, separators=(",", ":")).encode()


def load_state(data: bytes) -> PivState:
    """The inverse of :func:`dump_state`; anything else raises StateMalformed."""
    try:
        raw = json.loads(data)
        return _state_from(raw)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        if isinstance(err, StateMalformed):
            raise
        raise StateMalformed("the stored card state could not be read") from err


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, IntEnum | bool | int | str) or value is None:
        return value
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}


def _state_from(raw: dict[str, Any]) -> PivState:
    return PivState(
        serial=_int(raw["serial"]),
        objects=tuple((_int(tag), bytes.fromhex(content)) for tag, content in raw["objects"]),
        keys=tuple((Slot(slot), Algorithm(alg)) for slot, alg in raw["keys"]),
        management_algorithm=Algorithm(raw["management_algorithm"]),
        management_key_default=_bool(raw["management_key_default"]),
        pin_tries=_counter_from(raw["pin_tries"]),
        puk_tries=_counter_from(raw["puk_tries"]),
        security=SecurityStatus(**{name: _bool(v) for name, v in raw["security"].items()}),
        pending_response=bytes.fromhex(raw["pending_response"]),
        pending_chain=_chain_from(raw["pending_chain"]),
        challenge=_challenge_from(raw["challenge"]),
    )


def _counter_from(raw: dict[str, Any]) -> RetryCounter:
    return RetryCounter(left=_int(raw["left"]), limit=_int(raw["limit"]))


def _chain_from(raw: dict[str, Any] | None) -> PendingChain | None:
    if raw is None:
        return None
    header = {name: _int(raw[name]) for name in ("ins", "p1", "p2")}
    return PendingChain(**header, data=bytes.fromhex(raw["data"]))


def _challenge_from(raw: dict[str, Any] | None) -> ManagementChallenge | None:
    if raw is None:
        return None
    return ManagementChallenge(
        kind=ChallengeKind(raw["kind"]),
        algorithm=Algorithm(raw["algorithm"]),
        value=bytes.fromhex(raw["value"]),
    )


def _int(value: Any) -> int:
    if type(value) is not int:
        raise StateMalformed("expected a number")
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise StateMalformed("expected true or false")
    return value
