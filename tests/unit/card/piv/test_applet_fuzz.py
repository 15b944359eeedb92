"""No byte string, and no sequence of them, makes the applet raise or break its state."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.piv_fakes import Card, verify_apdu

from cardvault.card.piv import (
    Algorithm,
    Ins,
    PivState,
    Slot,
    blank_card,
    dump_state,
    load_state,
    process,
)

_INSTRUCTIONS = [int(ins) for ins in Ins] + [0x00, 0xCA, 0x12]
_PARAMETERS = st.sampled_from(
    [0x00, 0x03, 0x07, 0x10, 0x11, 0x3F, 0x80, 0x81, 0x9A, 0x9B, 0x9C, 0x9D, 0xFF]
)


@st.composite
def plausible_apdus(draw: st.DrawFn) -> bytes:
    """Headers of real instructions with any parameters and body: reaches the handlers."""
    cla = draw(st.sampled_from([0x00, 0x10, 0x0C, 0x80, 0xFF]))
    header = bytes(
        (
            cla,
            draw(st.sampled_from(_INSTRUCTIONS)),
            draw(_PARAMETERS | st.integers(0, 255)),
            draw(_PARAMETERS | st.integers(0, 255)),
        )
    )
    data = draw(st.binary(max_size=300) | st.sampled_from(_TEMPLATES))
    if not data:
        return header + draw(st.sampled_from([b"", b"\x00", b"\x08"]))
    if len(data) < 256 and draw(st.booleans()):
        return header + bytes((len(data),)) + data + draw(st.sampled_from([b"", b"\x00"]))
    return header + b"\x00" + len(data).to_bytes(2, "big") + data


_TEMPLATES = [
    bytes.fromhex(text)
    for text in (
        "7C028000",
        "7C028100",
        "7C14800800000000000000008108" + "00" * 8,
        "7C0A8208" + "00" * 8,
        "7C2482008120" + "00" * 32,
        "7C820106820081820100" + "FF" * 256,
        "7C820106820081820100" + "0002" + "5A" * 253 + "00",  # an RSA block below n (9D decrypt)
        "A000000527200101",  # the YubiKey OTP application (its serial request: 01 10)
        "7C4482008541" + "04" + "00" * 64,
        "5C017E",
        "5C035FC105",
        "5C035FC1095303010203",
        "AC03800111",
        "AC03800107",
    )
]

apdus = st.one_of(st.binary(max_size=40), plausible_apdus(), st.just(verify_apdu()))


@pytest.fixture(scope="module", params=[Algorithm.ECC_P256, Algorithm.RSA2048])
def provisioned(request: pytest.FixtureRequest) -> tuple[PivState, Card]:
    """A card with keys in 9A (RSA), 9C (EC) and 9D (EC: key agreement; RSA: decryption), so
    signing, ECDH and decryption paths are all reachable."""
    card = Card(state=blank_card(serial=1, guid=bytes(16)))
    card.install_key(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048)
    card.install_key(Slot.DIGITAL_SIGNATURE, Algorithm.ECC_P256)
    card.install_key(Slot.KEY_MANAGEMENT, request.param)
    return card.state, card


def check_consistent(state: PivState) -> None:
    assert load_state(dump_state(state)) == state
    assert state.pin_tries.left <= state.pin_tries.limit
    assert not (state.security.pin_always and not state.security.pin_verified)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=st.lists(apdus, max_size=12), authenticated=st.booleans())
def test_any_apdu_sequence_is_answered_with_a_status_word(
    provisioned: tuple[PivState, Card], sequence: list[bytes], authenticated: bool
) -> None:
    state, card = provisioned
    state = state.with_security(management_authenticated=authenticated)
    for apdu in sequence:
        state, answer = process(state, apdu, card.ports)
        assert isinstance(answer, bytes)
        assert len(answer) >= 2
        assert answer[-2] in {0x90, 0x61, 0x63, 0x65, 0x67, 0x68, 0x69, 0x6A, 0x6D, 0x6E, 0x6F}
        check_consistent(state)
