import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardvault.card import tlv


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_three_byte_tags_and_long_lengths_round_trip() -> None:
    value = bytes(300)
    encoded = tlv.encode(0x5FC105, value)
    assert encoded[:6] == h("5FC10582012C")
    assert tlv.decode(encoded) == (tlv.Tlv(tag=0x5FC105, value=value),)


def test_length_forms_are_minimal() -> None:
    assert tlv.encode_length(0x7F) == h("7F")
    assert tlv.encode_length(0x80) == h("8180")
    assert tlv.encode_length(0x100) == h("820100")
    assert tlv.encode_length(0x10000) == h("83010000")


def test_discovery_object_decodes() -> None:
    inner = tlv.decode_single(h("7E124F0BA0000003080000100001005F2F024000"), 0x7E)
    assert tlv.decode_map(inner) == {0x4F: h("A000000308000010000100"), 0x5F2F: h("4000")}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("8105", "value past the end"),
        ("81", "missing length"),
        ("5F", "tag past the end"),
        ("5FC1C1C10100", "four-byte tag"),
        ("808100", "non-minimal length"),
        ("80820001AA", "non-minimal two-byte length"),
        ("8080", "indefinite length"),
        ("808400000001AA", "four length bytes"),
        ("0000", "padding"),
        ("FF00", "padding"),
        ("800100 81", "trailing garbage"),
    ],
)
def test_malformed_input_is_refused(raw: str, why: str) -> None:
    with pytest.raises(tlv.TlvError):
        tlv.decode(h(raw))


def test_duplicate_tags_are_refused_in_a_map() -> None:
    with pytest.raises(tlv.TlvError):
        tlv.decode_map(h("80008000"))


def test_decode_single_wants_exactly_one_object_of_the_tag() -> None:
    with pytest.raises(tlv.TlvError):
        tlv.decode_single(h("7C00 7C00"), 0x7C)
    with pytest.raises(tlv.TlvError):
        tlv.decode_single(h("7D00"), 0x7C)


_tags = st.sampled_from([0x01, 0x53, 0x7C, 0x5C, 0x7F49, 0x5FC102, 0x5F2F])


@given(st.lists(st.tuples(_tags, st.binary(max_size=300)), max_size=5))
def test_encode_then_decode_is_identity(items: list[tuple[int, bytes]]) -> None:
    decoded = tlv.decode(tlv.encode_all(items))
    assert [(item.tag, item.value) for item in decoded] == items


@given(st.binary(max_size=64))
def test_decode_never_fails_other_than_with_tlv_error(data: bytes) -> None:
    try:
        decoded = tlv.decode(data)
    except tlv.TlvError:
        return
    assert b"".join(item.to_bytes() for item in decoded) == data
