"""The applet's ports (``CardPorts``) as the service implements them, for one APDU.

The applet decides whether an operation may happen; these ports do it with the card's
secrets and *collect* every change as an effect instead of writing it: the relay commits the
effects together with the new state, only if the stored state is still the one the APDU was
computed from. Nothing here touches the database.

Keys are opened one at a time: the DEK comes from the card session (``unwrap(wrap, SK)``) or,
while a card is being issued, from the RA connector's issuance key; the one sealed key needed
is opened, used and wiped. In a holder's session the management key is refused: card
administration (keys, certificates, objects) happens only at issuance.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from cardvault.card.apdu import CardError, Sw
from cardvault.card.piv import Algorithm, PinRef, Slot, WrongReferenceData
from cardvault.card.piv.asymmetric import GENERATABLE
from cardvault.crypto import keys as ckeys
from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import (
    PASSCODE_SLOT,
    CardKeyRecord,
    SealedKey,
    SlotNotFound,
    make_passcode_slot,
    open_private_key,
    seal_private_key,
)
from cardvault.crypto.pin_verifier import ReferenceMismatch, check_verifier, make_verifier
from cardvault.crypto.piv_keys import ecdh_shared_secret, ecdsa_sign_hash, rsa_private_block
from cardvault.crypto.x509 import CertUsage
from cardvault.domain.card_pin import CARD_PIN_MIN, check_card_pin
from cardvault.errors import InvalidInput
from cardvault.services.piv.recheck import PinRecheck
from cardvault.services.piv.secrets import DEFAULT_PIN, DEFAULT_PUK, PivSecrets
from cardvault.services.system.runtime import Runtime

__all__ = ["Effects", "KeyUse", "Mode", "ServicePorts", "key_role", "sealed_key_of"]

_PAD = b"\xff"


class Mode(StrEnum):
    """Whom a reader link serves: a holder's card session, or an RA personalising a card."""

    USE = "use"  # a holder's card session
    ISSUANCE = "issuance"  # an RA's connector personalising a blank card


def key_role(slot: Slot) -> str:
    """The sealed key's role in the card key record: the certificate usages' names for 9A,
    9C and 9D, so a key issued by the service and one generated over PC/SC are the same."""
    usage = _SLOT_USAGES.get(slot)
    return usage.value if usage is not None else f"piv_{int(slot):02x}"


_SLOT_USAGES = {
    Slot.PIV_AUTHENTICATION: CertUsage.AUTHENTICATION,
    Slot.DIGITAL_SIGNATURE: CertUsage.CONTENT_COMMITMENT,
    Slot.KEY_MANAGEMENT: CertUsage.KEY_MANAGEMENT,
}
#: 9D's role before it had a certificate usage: a card personalised over PC/SC earlier holds
#: its key-management key under this name (bound into the seal, so it cannot be renamed
#: without the card's data key); reading falls back to it
_LEGACY_ROLES = {Slot.KEY_MANAGEMENT: "piv_9d"}


def sealed_key_of(record: CardKeyRecord, slot: Slot) -> SealedKey:
    """The slot's sealed key under its role, or under the name an earlier version used."""
    role = key_role(slot)
    held = {k.role for k in record.keys}
    legacy = _LEGACY_ROLES.get(slot)
    return record.key(legacy if role not in held and legacy in held else role)


@dataclass(frozen=True, kw_only=True)
class KeyUse:
    """One use of a card key, for the audit trail (the input only as a hash)."""

    operation: str
    slot: Slot
    algorithm: Algorithm
    input_sha256: str


@dataclass(kw_only=True)
class Effects:
    """What one APDU changed besides the applet state, and what the audit trail must show."""

    record: CardKeyRecord | None = None
    secrets: PivSecrets | None = None
    public_keys: dict[Slot, bytes] = field(default_factory=dict)
    key_uses: list[KeyUse] = field(default_factory=list)
    generated: list[tuple[Slot, Algorithm]] = field(default_factory=list)
    checks: list[tuple[PinRef, bool]] = field(default_factory=list)
    changed: list[PinRef] = field(default_factory=list)
    management_changed: bool = False
    #: a PIN block the verifier accepted (kept for re-checks), or the re-check to forget
    recheck_block: bytes | None = field(default=None, repr=False)
    recheck_clear: bool = False


class ServicePorts:
    """``CardPorts`` over the card's sealed secrets; see the module docstring."""

    def __init__(
        self,
        rt: Runtime,
        *,
        mode: Mode,
        card_id: str,
        secrets: PivSecrets,
        record: Callable[[], CardKeyRecord],
        dek: Callable[[], bytearray],
        recheck: PinRecheck | None = None,
        pin_minimum: int = CARD_PIN_MIN,
    ) -> None:
        self._rt = rt
        self._mode = mode
        self._card_id = card_id
        self._secrets = secrets
        self._load_record = record
        self._dek = dek
        self._recheck = recheck
        self._pin_minimum = pin_minimum
        self.effects = Effects()

    # -- reference data ----------------------------------------------------------------------

    def random_bytes(self, count: int) -> bytes:
        """Random bytes from ``secrets``, for challenges."""
        return secrets.token_bytes(count)

    def verify_reference(self, reference: PinRef, value: bytes) -> None:
        """Check the card PIN or PUK; raises WrongReferenceData (with tries left)."""
        if reference is PinRef.PIV_PIN and self._rechecked(value):
            self.effects.checks.append((reference, True))
            return
        verifier = self._current_secrets().verifier(reference)
        try:
            with self._rt.kdf_gate.slot():
                check_verifier(verifier, _unpadded(value))
        except ReferenceMismatch:
            self.effects.checks.append((reference, False))
            raise WrongReferenceData() from None
        self.effects.checks.append((reference, True))
        if reference is PinRef.PIV_PIN:
            self.effects.recheck_block = value

    def _rechecked(self, value: bytes) -> bool:
        """The PIN verified last on this link, again (see recheck.py): no Argon2id run."""
        recheck = self._recheck
        return recheck is not None and not self.effects.changed and recheck.matches(value)

    def change_reference(self, reference: PinRef, value: bytes) -> None:
        """Set a new PIN or PUK; raises CardError for a default value or a bad length."""
        plain = _unpadded(value)
        if plain == (DEFAULT_PUK if reference is PinRef.PUK else DEFAULT_PIN):
            raise CardError(Sw.INCORRECT_DATA, "the default value cannot be set again")
        if reference is PinRef.PIV_PIN and self._mode is Mode.USE:
            _check_holder_pin(plain, self._pin_minimum)
        with self._rt.kdf_gate.slot():
            verifier = make_verifier(plain, self._rt.settings.argon2)
        self.effects.secrets = self._current_secrets().with_reference(reference, verifier)
        self.effects.changed.append(reference)
        if reference is PinRef.PIV_PIN:
            self.effects.recheck_block, self.effects.recheck_clear = None, True
        if reference is PinRef.PIV_PIN and self._mode is Mode.ISSUANCE:
            self._seal_under_pin(plain.decode("ascii"))

    def _seal_under_pin(self, pin: str) -> None:
        """At issuance the PIN is the issuance passcode: it gets the passcode slot (§3.8)."""
        record = self._record()
        try:
            generation = record.slot(PASSCODE_SLOT).generation + 1
        except SlotNotFound:
            generation = 1
        dek = self._dek()
        try:
            with self._rt.kdf_gate.slot():
                slot = make_passcode_slot(
                    dek,
                    card_id=self._card_id,
                    passcode=pin,
                    params=self._rt.settings.argon2,
                    generation=generation,
                )
        finally:
            wipe(dek)
        self.effects.record = record.with_slot(slot)

    # -- management key ----------------------------------------------------------------------

    def management_key(self, algorithm: Algorithm) -> bytearray:
        """The card's management key, at issuance only; raises CardError otherwise."""
        self._require_issuance()
        current = self._current_secrets()
        if current.management_algorithm is not algorithm or not current.management_key:
            raise CardError(Sw.CONDITIONS_NOT_SATISFIED, "no management key of that algorithm")
        return bytearray(current.management_key)

    def set_management_key(self, algorithm: Algorithm, key: bytes) -> None:
        """Replace the management key, at issuance only."""
        self._require_issuance()
        self.effects.secrets = self._current_secrets().with_management_key(algorithm, key)
        self.effects.management_changed = True

    # -- keys --------------------------------------------------------------------------------

    def generate_key(self, slot: Slot, algorithm: Algorithm) -> bytes:
        """Generate a key in a slot, at issuance only; its public key as the applet returns it."""
        self._require_issuance()
        kind = GENERATABLE[algorithm]
        key = ckeys.generate_private_key(kind)
        pkcs8 = ckeys.private_key_to_pkcs8(key)
        record = self._record()
        role = key_role(slot)
        version = max((k.version for k in record.keys if k.role == role), default=0) + 1
        dek = self._dek()
        try:
            sealed = seal_private_key(
                dek,
                card_id=self._card_id,
                role=role,
                version=version,
                algorithm=kind.value,
                pkcs8=pkcs8,
            )
        finally:
            wipe(dek)
            wipe(pkcs8)
        others = tuple(k for k in record.keys if k.role not in (role, _LEGACY_ROLES.get(slot)))
        self.effects.record = replace(record, keys=(*others, sealed))
        spki = ckeys.public_key_der(key)
        self.effects.public_keys[slot] = spki
        self.effects.generated.append((slot, algorithm))
        return spki

    def sign(self, slot: Slot, algorithm: Algorithm, data: bytes) -> bytes:
        """Sign a padded block with the slot's RSA key; raises CardError for a missing key."""
        key = self._private_key(slot, algorithm, "sign", data)
        return rsa_private_block(key, data) if algorithm.is_rsa else ecdsa_sign_hash(key, data)

    def decrypt(self, slot: Slot, algorithm: Algorithm, block: bytes) -> bytes:
        """Decrypt a block with the slot's RSA key; raises CardError for a missing key."""
        return rsa_private_block(self._private_key(slot, algorithm, "decrypt", block), block)

    def ecdh(self, slot: Slot, algorithm: Algorithm, peer_point: bytes) -> bytes:
        """The ECDH shared secret with the slot's key; raises CardError for a missing key."""
        key = self._private_key(slot, algorithm, "ecdh", peer_point)
        return ecdh_shared_secret(key, peer_point)

    def _private_key(
        self, slot: Slot, algorithm: Algorithm, operation: str, data: bytes
    ) -> ckeys.PrivateKey:
        sealed = sealed_key_of(self._record(), slot)
        if sealed.algorithm != GENERATABLE[algorithm].value:
            raise CardError(Sw.NO_PRECISE_DIAGNOSIS, "the sealed key has another algorithm")
        dek = self._dek()
        try:
            pkcs8 = open_private_key(dek, card_id=self._card_id, sealed=sealed)
        finally:
            wipe(dek)
        try:
            key = ckeys.load_private_key(pkcs8, trusted=True)
        finally:
            wipe(pkcs8)
        digest = hashlib.sha256(data).hexdigest()
        self.effects.key_uses.append(
            KeyUse(operation=operation, slot=slot, algorithm=algorithm, input_sha256=digest)
        )
        return key

    # -- helpers -----------------------------------------------------------------------------

    def _current_secrets(self) -> PivSecrets:
        return self.effects.secrets or self._secrets

    def _record(self) -> CardKeyRecord:
        return self.effects.record or self._load_record()

    def _require_issuance(self) -> None:
        if self._mode is not Mode.ISSUANCE:
            raise CardError(
                Sw.SECURITY_STATUS_NOT_SATISFIED, "card administration happens only at issuance"
            )


def _check_holder_pin(plain: bytes, minimum: int) -> None:
    """A holder changing their card PIN from smartcard software meets the same rule as with
    ``cardvault-agent pin change`` (domain/card_pin.py), the organisation's minimum included."""
    try:
        check_card_pin(plain.decode("ascii"), minimum=minimum)
    except (InvalidInput, UnicodeDecodeError):
        raise CardError(
            Sw.INCORRECT_DATA, f"the card PIN is {minimum}-8 digits, not trivial"
        ) from None


def _unpadded(block: bytes) -> bytes:
    return block.rstrip(_PAD)
