import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardvault.card.apdu import CardError, CommandApdu, Sw, parse_command, response


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_case_1_has_no_data_and_no_le() -> None:
    assert parse_command(h("00200080")) == CommandApdu(cla=0, ins=0x20, p1=0, p2=0x80)


def test_case_2_le_00_means_256() -> None:
    command = parse_command(h("0020008000"))
    assert (command.data, command.ne) == (b"", 256)


def test_case_3_without_le_still_allows_a_full_short_response() -> None:
    command = parse_command(h("00CB3FFF055C035FC102"))
    assert command.data == h("5C035FC102")
    assert command.ne is None
    assert command.max_response == 256


def test_case_4_short_keeps_le() -> None:
    command = parse_command(h("00CB3FFF055C035FC10208"))
    assert (command.data, command.ne) == (h("5C035FC102"), 8)


def test_extended_case_2_3_and_4() -> None:
    assert parse_command(h("00C00000000000")).ne == 65536
    case3 = parse_command(h("00DB3FFF000003") + b"abc")
    assert (case3.data, case3.ne, case3.extended) == (b"abc", None, True)
    assert case3.max_response == 65536
    case4 = parse_command(h("00870700000003") + b"abc" + h("0108"))
    assert (case4.data, case4.ne) == (b"abc", 0x108)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "00",
        "002000",
        "00200080 03 0102",
        "00200080000002aa",
        "002000800000",
        "00200080 00 0000 aa",
    ],
)
def test_malformed_lengths_are_6700(raw: str) -> None:
    with pytest.raises(CardError) as caught:
        parse_command(h(raw))
    assert caught.value.sw == Sw.WRONG_LENGTH


def test_chaining_bit_is_read_from_cla() -> None:
    assert parse_command(h("10DB3FFF0101")).chained
    assert not parse_command(h("00DB3FFF0101")).chained


@given(
    cla=st.integers(0, 255),
    ins=st.integers(0, 255),
    data=st.binary(max_size=600),
    ne=st.none() | st.integers(1, 65536),
)
def test_to_bytes_parses_back_to_the_same_command(
    cla: int, ins: int, data: bytes, ne: int | None
) -> None:
    command = CommandApdu(cla=cla, ins=ins, p1=1, p2=2, data=data, ne=ne)
    parsed = parse_command(command.to_bytes())
    assert (parsed.data, parsed.ne) == (data, ne)
    assert (parsed.cla, parsed.ins, parsed.p1, parsed.p2) == (cla, ins, 1, 2)


def test_status_word_helpers() -> None:
    assert Sw.remaining(0x108) == 0x6100
    assert Sw.remaining(8) == 0x6108
    assert Sw.retries(2) == 0x63C2
    assert Sw.retries(99) == 0x63CF
    assert response(b"\x01", Sw.SUCCESS) == h("019000")


def test_card_error_carries_its_status_word() -> None:
    error = CardError(Sw.SECURITY_STATUS_NOT_SATISFIED)
    assert error.sw == 0x6982
    assert error.as_dict()["sw"] == 0x6982
