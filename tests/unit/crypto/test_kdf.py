from __future__ import annotations

import pytest
from argon2.low_level import Type, hash_secret_raw

from cardvault.crypto.kdf import DEFAULT_ARGON2, Argon2Params, derive_key, hkdf_key
from cardvault.errors import InvalidInput

CHEAP = Argon2Params(time_cost=1, memory_kib=64, parallelism=1)
SALT = b"0123456789abcdef"


def test_defaults_are_owasp_minimum_for_argon2id() -> None:
    assert Argon2Params(time_cost=2, memory_kib=19456, parallelism=1) == DEFAULT_ARGON2


def test_params_round_trip_through_dict() -> None:
    params = Argon2Params(time_cost=3, memory_kib=65536, parallelism=2)
    assert params.as_dict() == {"time_cost": 3, "memory_kib": 65536, "parallelism": 2}
    assert Argon2Params.from_dict(params.as_dict()) == params


@pytest.mark.parametrize(
    "data",
    [
        {"time_cost": 1, "memory_kib": 64},
        {"time_cost": 1, "memory_kib": 64, "parallelism": 1, "extra": 1},
        {"time_cost": "1", "memory_kib": 64, "parallelism": 1},
        {"time_cost": 1.0, "memory_kib": 64, "parallelism": 1},
        {"time_cost": True, "memory_kib": 64, "parallelism": 1},
        {"time_cost": 0, "memory_kib": 64, "parallelism": 1},
        {"time_cost": 1, "memory_kib": 7, "parallelism": 1},
        {"time_cost": 1, "memory_kib": 64, "parallelism": 9},
        {"time_cost": 1, "memory_kib": 10**9, "parallelism": 1},
        [1, 64, 1],
        None,
    ],
)
def test_from_dict_refuses_bad_params(data: object) -> None:
    with pytest.raises(InvalidInput):
        Argon2Params.from_dict(data)


def test_derive_key_is_argon2id_raw() -> None:
    expected = hash_secret_raw(b"pass", SALT, 1, 64, 1, 32, Type.ID)
    assert derive_key(bytearray(b"pass"), SALT, CHEAP) == expected


def test_derive_key_depends_on_secret_salt_and_params() -> None:
    base = derive_key(b"pass", SALT, CHEAP)
    assert isinstance(base, bytearray)
    assert len(base) == 32
    assert derive_key(b"pasS", SALT, CHEAP) != base
    assert derive_key(b"pass", SALT[::-1], CHEAP) != base
    assert derive_key(b"pass", SALT, Argon2Params(time_cost=2, memory_kib=64)) != base


def test_derive_key_refuses_short_salt() -> None:
    with pytest.raises(InvalidInput):
        derive_key(b"pass", b"short", CHEAP)


def test_hkdf_key_matches_rfc5869_test_case_1() -> None:
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    expected = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
    assert hkdf_key(ikm, salt, info).hex() == expected


def test_hkdf_key_depends_on_info() -> None:
    secret = bytearray(32)
    assert hkdf_key(secret, b"", b"a") != hkdf_key(secret, b"", b"b")
