import json

import pytest

from cardvault.card.piv import (
    Algorithm,
    ObjectId,
    PivState,
    Slot,
    StateMalformed,
    blank_card,
    dump_state,
    load_state,
)
from cardvault.card.piv.state import (
    ChallengeKind,
    ManagementChallenge,
    PendingChain,
    RetryCounter,
)


def busy_state() -> PivState:
    state = blank_card(serial=7, guid=bytes(16)).with_key(
        Slot.DIGITAL_SIGNATURE, Algorithm.ECC_P256
    )
    state = state.with_security(pin_verified=True, pin_always=True)
    return PivState(
        **{
            **state.__dict__,
            "pending_response": b"\x01\x02",
            "pending_chain": PendingChain(ins=0xDB, p1=0x3F, p2=0xFF, data=b"\x5c"),
            "challenge": ManagementChallenge(
                kind=ChallengeKind.MUTUAL, algorithm=Algorithm.TDES, value=bytes(8)
            ),
        }
    )


def test_dump_and_load_round_trip() -> None:
    state = busy_state()
    assert load_state(dump_state(state)) == state


def test_power_up_forgets_everything_in_flight_and_proved() -> None:
    state = busy_state().powered_up()
    assert state.security.pin_verified is False
    assert (state.pending_response, state.pending_chain, state.challenge) == (b"", None, None)
    assert state.keys == busy_state().keys


@pytest.mark.parametrize(
    "change",
    [
        {"serial": -1},
        {"serial": "7"},
        {"management_algorithm": 0x07},
        {"management_key_default": 1},
        {"pin_tries": {"left": 4, "limit": 3}},
        {"keys": [[0x9B, 0x07]]},
        {"keys": [[0x9A, 0x03]]},
        {"objects": [[0x7E, "00"]]},
        {"objects": [[ObjectId.CHUID, "00" * 5000]]},
        {"challenge": {"kind": 1, "algorithm": 3, "value": "00"}},
        {"security": {"pin_verified": True, "surprise": True}},
    ],
)
def test_load_refuses_inconsistent_states(change: dict[str, object]) -> None:
    raw = json.loads(dump_state(busy_state()))
    raw.update(change)
    with pytest.raises(StateMalformed):
        load_state(json.dumps(raw).encode())


def test_load_refuses_what_is_not_json() -> None:
    with pytest.raises(StateMalformed):
        load_state(b"\xff")


def test_default_management_key_implies_3des() -> None:
    with pytest.raises(StateMalformed):
        PivState(serial=1, management_algorithm=Algorithm.AES256)


def test_retry_counter_never_goes_below_zero() -> None:
    counter = RetryCounter(left=1).failed().failed()
    assert counter.blocked
    assert counter.reset().left == 3


def test_slots_name_their_certificate_objects() -> None:
    assert Slot.PIV_AUTHENTICATION.certificate_object == ObjectId.CERT_PIV_AUTHENTICATION
    assert Slot.DIGITAL_SIGNATURE.certificate_object == 0x5FC10A
    assert Slot.RETIRED_20.certificate_object == ObjectId.RETIRED_CERT_20
    assert Slot.DIGITAL_SIGNATURE.pin_always
    assert not Slot.CARD_AUTHENTICATION.needs_pin
    with pytest.raises(ValueError, match="no certificate"):
        _ = Slot.CARD_MANAGEMENT.certificate_object
