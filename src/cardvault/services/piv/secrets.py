"""A card's PIV secrets: PIN and PUK verifiers and the management key, sealed under the master key.

They are one blob, sealed with AAD = card id ‖ ``secrets_version``, so that a blob copied to
another card, or an older one restored over a newer one without the master key, fails to open.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace

from cardvault.card.piv import Algorithm, PinRef
from cardvault.crypto.aead import aad, wipe
from cardvault.crypto.kdf import Argon2Params
from cardvault.crypto.pin_verifier import Verifier, make_verifier
from cardvault.errors import IntegrityError
from cardvault.keystore.provider import MasterKey

__all__ = ["DEFAULT_PIN", "DEFAULT_PUK", "PivSecrets", "open_secrets", "seal_secrets"]

#: what a blank PIV card accepts until the card management system sets its own
DEFAULT_PIN = b"123456"
DEFAULT_PUK = b"12345678"


@dataclass(frozen=True, kw_only=True)
class PivSecrets:
    """The card PIN and PUK verifiers and the management key, sealed per card."""

    pin: Verifier
    puk: Verifier
    #: set by the card management system (a blank card's defaults are not "set")
    pin_set: bool = False
    puk_set: bool = False
    management_algorithm: Algorithm | None = None
    management_key: bytes = field(default=b"", repr=False)

    @classmethod
    def blank(cls, params: Argon2Params) -> PivSecrets:
        """The secrets of a new card: the default PIN and PUK."""
        return cls(pin=make_verifier(DEFAULT_PIN, params), puk=make_verifier(DEFAULT_PUK, params))

    def verifier(self, reference: PinRef) -> Verifier:
        """The verifier of the PIN or the PUK."""
        return self.puk if reference is PinRef.PUK else self.pin

    def with_reference(self, reference: PinRef, verifier: Verifier) -> PivSecrets:
        """These secrets with a new PIN or PUK verifier."""
        if reference is PinRef.PUK:
            return replace(self, puk=verifier, puk_set=True)
        return replace(self, pin=verifier, pin_set=True)

    def with_management_key(self, algorithm: Algorithm, key: bytes) -> PivSecrets:
        """These secrets with a new management key."""
        return replace(self, management_algorithm=algorithm, management_key=bytes(key))

    def to_bytes(self) -> bytearray:
        """The secrets as JSON bytes, in a buffer the caller wipes."""
        body = {
            "pin": self.pin.as_dict(),
            "puk": self.puk.as_dict(),
            "pin_set": self.pin_set,
            "puk_set": self.puk_set,
            "management": None
            if self.management_algorithm is None
            else {
                "algorithm": int(self.management_algorithm),
                "key": base64.b64encode(self.management_key).decode(),
            },
        }
        return bytearray(json.dumps(body, sort_keys=True).encode())

    @classmethod
    def from_bytes(cls, data: bytes | bytearray) -> PivSecrets:
        """Read secrets back; raises IntegrityError for anything our code did not write."""
        try:
            body = json.loads(bytes(data))  # checked field by field below
            management = body["management"]
            return cls(
                pin=Verifier.from_dict(body["pin"]),
                puk=Verifier.from_dict(body["puk"]),
                pin_set=bool(body["pin_set"]),
                puk_set=bool(body["puk_set"]),
                management_algorithm=None
                if management is None
                else Algorithm(management["algorithm"]),
                management_key=b""
                if management is None
                else base64.b64decode(management["key"], validate=True),
            )
        except (ValueError, TypeError, KeyError) as err:
            raise IntegrityError("the card's PIV secrets are damaged") from err


def _aad(card_id: str, version: int) -> bytes:
    return aad("piv-secrets", card_id, version)


def seal_secrets(master: MasterKey, card_id: str, version: int, value: PivSecrets) -> bytes:
    """Seal the secrets under the master key, bound to card and version."""
    plain = value.to_bytes()
    try:
        return master.seal(plain, aad=_aad(card_id, version))
    finally:
        wipe(plain)


def open_secrets(master: MasterKey, card_id: str, version: int, blob: bytes) -> PivSecrets:
    """Open sealed secrets; raises SealBroken or IntegrityError if altered or moved."""
    plain = master.open(blob, aad=_aad(card_id, version))
    try:
        return PivSecrets.from_bytes(plain)
    finally:
        wipe(plain)
