from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardvault.crypto.aead import NONCE_SIZE, TAG_SIZE, SealBroken, aad, open_sealed, seal, wipe
from cardvault.errors import IntegrityError

KEY = bytes(range(32))


def test_seal_then_open_returns_plaintext_as_bytearray() -> None:
    blob = seal(KEY, b"secret", b"ctx")
    out = open_sealed(KEY, blob, b"ctx")
    assert out == bytearray(b"secret")
    assert isinstance(out, bytearray)
    assert len(blob) == NONCE_SIZE + len(b"secret") + TAG_SIZE


def test_seal_uses_a_fresh_nonce_each_time() -> None:
    assert seal(KEY, b"x", b"") != seal(KEY, b"x", b"")


def test_seal_accepts_bytearray_key_and_plaintext() -> None:
    blob = seal(bytearray(KEY), bytearray(b"abc"), b"")
    assert open_sealed(bytearray(KEY), blob, b"") == b"abc"


def test_open_with_wrong_aad_raises_seal_broken() -> None:
    blob = seal(KEY, b"secret", b"card-1")
    with pytest.raises(SealBroken) as info:
        open_sealed(KEY, blob, b"card-2")
    assert info.value.code == "integrity"
    assert isinstance(info.value, IntegrityError)


def test_open_with_wrong_key_raises_seal_broken() -> None:
    with pytest.raises(SealBroken):
        open_sealed(bytes(32), seal(KEY, b"secret", b""), b"")


@pytest.mark.parametrize("length", [0, 1, NONCE_SIZE, NONCE_SIZE + TAG_SIZE - 1])
def test_open_truncated_blob_raises_seal_broken(length: int) -> None:
    with pytest.raises(SealBroken):
        open_sealed(KEY, seal(KEY, b"", b"")[:length], b"")


def test_empty_plaintext_round_trips() -> None:
    assert open_sealed(KEY, seal(KEY, b"", b"a"), b"a") == b""


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33])
def test_wrong_key_size_raises_seal_broken(size: int) -> None:
    with pytest.raises(SealBroken):
        seal(bytes(size), b"x", b"")
    with pytest.raises(SealBroken):
        open_sealed(bytes(size), bytes(40), b"")


@given(st.binary(max_size=64), st.data())
def test_any_changed_byte_breaks_the_seal(plaintext: bytes, data: st.DataObject) -> None:
    blob = bytearray(seal(KEY, plaintext, b"ctx"))
    position = data.draw(st.integers(0, len(blob) - 1))
    blob[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SealBroken):
        open_sealed(KEY, bytes(blob), b"ctx")


def test_wipe_zeroes_in_place() -> None:
    buf = bytearray(b"secret key")
    view = memoryview(buf)
    wipe(buf)
    assert buf == bytearray(10)
    assert view.tobytes() == bytes(10)


def test_aad_is_unambiguous_across_part_boundaries() -> None:
    assert aad("ab", "c") != aad("a", "bc")
    assert aad("a", "") != aad("a")
    assert aad(1) != aad("1") != aad(b"1")
    assert aad("x", 12) != aad("x", 1, 2)


def test_aad_is_deterministic() -> None:
    assert aad("card", b"\x00", 7) == aad("card", b"\x00", 7)


def test_aad_refuses_bool_and_other_types() -> None:
    with pytest.raises(TypeError):
        aad(True)
    with pytest.raises(TypeError):
        aad(1.5)  # type: ignore[arg-type]


@given(
    st.lists(st.one_of(st.text(), st.binary(), st.integers()), max_size=4),
    st.lists(st.one_of(st.text(), st.binary(), st.integers()), max_size=4),
)
def test_aad_equal_only_for_equal_parts(
    a: list[str | bytes | int], b: list[str | bytes | int]
) -> None:
    def typed(parts: list[str | bytes | int]) -> list[tuple[str, str | bytes | int]]:
        return [(type(p).__name__, p) for p in parts]

    assert (aad(*a) == aad(*b)) == (typed(a) == typed(b))
