"""The PIV management key's block cipher (SP 800-73-4 Part 2 Appendix A; SP 800-78-4 §3.1).

Challenge-response with the card management key (key reference 9B) encrypts exactly one block
in ECB mode: 3DES (the blank-card default, and all yubico-piv-tool 2.2 speaks) or AES.
3DES comes from ``cryptography``'s *decrepit* module on purpose: it is kept only because the
clients we must interoperate with still use it, and nothing else in cardvault may.
"""

from __future__ import annotations

from enum import StrEnum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from cardvault.errors import InvalidInput

__all__ = ["BlockCipher", "ecb_decrypt", "ecb_encrypt"]


class BlockCipher(StrEnum):
    TDES = "3des"
    AES = "aes"

    @property
    def block_bytes(self) -> int:
        return 8 if self is BlockCipher.TDES else 16

    def key_sizes(self) -> tuple[int, ...]:
        return (24,) if self is BlockCipher.TDES else (16, 24, 32)


def ecb_encrypt(cipher: BlockCipher, key: bytes | bytearray, block: bytes) -> bytes:
    """Encrypt one block (the card's witness or its answer to the host's challenge)."""
    context = _cipher(cipher, key, block).encryptor()
    return _run(context, block)


def ecb_decrypt(cipher: BlockCipher, key: bytes | bytearray, block: bytes) -> bytes:
    """Decrypt one block (what the host does with the card's witness)."""
    context = _cipher(cipher, key, block).decryptor()
    return _run(context, block)


def _cipher(cipher: BlockCipher, key: bytes | bytearray, block: bytes) -> Cipher[modes.ECB]:
    cipher = BlockCipher(cipher)
    if len(key) not in cipher.key_sizes():
        raise InvalidInput(f"a {cipher.value} management key is not {len(key)} bytes")
    if len(block) != cipher.block_bytes:
        raise InvalidInput(f"a {cipher.value} block is {cipher.block_bytes} bytes")
    algorithm = TripleDES(bytes(key)) if cipher is BlockCipher.TDES else algorithms.AES(bytes(key))
    return Cipher(algorithm, modes.ECB())  # noqa: S305 -- one block, as the standard says


def _run(context: CipherContext, block: bytes) -> bytes:
    return context.update(block) + context.finalize()
