"""What the applet needs from outside: the card's secrets and randomness (a Protocol it owns).

The applet decides *whether* an operation may happen (PIN verified, 9C armed, management key
authenticated, the slot holds a key of that algorithm); the ports *do* it with the secrets the
applet never keeps. A service implements them inside a card session: ``sign`` opens the one
sealed key it needs, uses it and wipes it; ``generate_key`` generates a key pair and seals it
(at issuance, under the issuance PIN); ``verify_reference`` checks the card PIN or PUK against
its stored hash. Any port may refuse with ``CardError(sw)`` (for instance ``6982`` when the
card PIN is offered outside a card session): the applet answers with that status word.
``InvalidInput`` (what ``cardvault.crypto`` raises for input a key cannot take, such as an RSA
block not below the modulus) is answered with ``6A80``.
Other exceptions (a database that is down, an audit event that cannot be written) are not the
card's business and propagate to the caller, which must then not store the new state.
"""

from __future__ import annotations

from dataclasses import field
from typing import Protocol

from cardvault.card.piv.constants import Algorithm, PinRef, Slot
from cardvault.errors import AuthenticationFailed, error

__all__ = ["CardPorts", "WrongReferenceData"]


@error
class WrongReferenceData(AuthenticationFailed):
    """The PIN or PUK offered is not the card's; the applet counts the failure."""

    code = "piv_wrong_reference_data"

    message: str = field(default="the PIN or PUK is not correct", init=False)


class CardPorts(Protocol):
    """The card's secrets. Every method may raise ``CardError`` to refuse."""

    def random_bytes(self, count: int) -> bytes:
        """Cryptographically secure random bytes (management-key challenges)."""
        ...

    def verify_reference(self, reference: PinRef, value: bytes) -> None:
        """Check an 8-byte PIN or PUK block (padded with FF); raise WrongReferenceData if it
        is wrong. The applet keeps the retry counters and never calls this when blocked."""
        ...

    def change_reference(self, reference: PinRef, value: bytes) -> None:
        """Store a new PIN or PUK (an 8-byte block padded with FF) after the applet checked
        the old one (CHANGE REFERENCE DATA) or the PUK (RESET RETRY COUNTER)."""
        ...

    def management_key(self, algorithm: Algorithm) -> bytearray:
        """The card's management key, which the applet wipes after use. Only asked for once
        the default key has been replaced; ``algorithm`` is the one the applet recorded."""
        ...

    def set_management_key(self, algorithm: Algorithm, key: bytes) -> None:
        """Replace the management key (the applet checked authentication and refused the
        well-known default)."""
        ...

    def generate_key(self, slot: Slot, algorithm: Algorithm) -> bytes:
        """Generate a key pair in ``slot``, replacing any key there; return the public key as
        SubjectPublicKeyInfo DER."""
        ...

    def sign(self, slot: Slot, algorithm: Algorithm, data: bytes) -> bytes:
        """Use the private key in ``slot``. RSA: ``data`` is the full block the client padded
        (k bytes); return the raw private-key operation on it (k bytes). ECDSA: ``data`` is the
        hash (left-padded or truncated to the field size by the caller's rules); return the
        DER signature."""
        ...

    def decrypt(self, slot: Slot, algorithm: Algorithm, block: bytes) -> bytes:
        """RSA private-key operation on a key management key (9D, retired): decrypt
        ``block`` without removing any padding -- the client does that."""
        ...

    def ecdh(self, slot: Slot, algorithm: Algorithm, peer_point: bytes) -> bytes:
        """EC key agreement with an uncompressed peer point; return the shared secret (x)."""
        ...
