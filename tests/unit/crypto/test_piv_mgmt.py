"""Known-answer tests of the management-key block ciphers and the RSA block operation."""

import pytest

from cardvault.crypto.keys import KeyAlgorithm, generate_private_key, public_key_der
from cardvault.crypto.piv_keys import public_parts, rsa_private_block
from cardvault.crypto.piv_mgmt import BlockCipher, ecb_decrypt, ecb_encrypt
from cardvault.errors import InvalidInput


def test_aes_128_fips_197_vector() -> None:
    key = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    plain = bytes.fromhex("00112233445566778899aabbccddeeff")
    cipher = ecb_encrypt(BlockCipher.AES, key, plain)
    assert cipher == bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")
    assert ecb_decrypt(BlockCipher.AES, key, cipher) == plain


def test_3des_with_three_equal_keys_is_single_des() -> None:
    key = bytes.fromhex("133457799BBCDFF1") * 3
    cipher = ecb_encrypt(BlockCipher.TDES, key, bytes.fromhex("0123456789ABCDEF"))
    assert cipher == bytes.fromhex("85E813540F0AB405")


@pytest.mark.parametrize(("key", "block"), [(bytes(16), bytes(8)), (bytes(24), bytes(16))])
def test_3des_refuses_wrong_sizes(key: bytes, block: bytes) -> None:
    with pytest.raises(InvalidInput):
        ecb_encrypt(BlockCipher.TDES, key, block)


def test_raw_rsa_block_inverts_the_public_operation() -> None:
    key = generate_private_key(KeyAlgorithm.RSA2048)
    parts = public_parts(public_key_der(key))
    n, e = int.from_bytes(parts.modulus, "big"), int.from_bytes(parts.exponent, "big")
    block = (12345).to_bytes(256, "big")
    assert pow(int.from_bytes(rsa_private_block(key, block), "big"), e, n) == 12345
    with pytest.raises(InvalidInput):
        rsa_private_block(key, parts.modulus)  # not smaller than the modulus
