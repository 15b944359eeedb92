"""The PIV applet image of a card the service issued (DESIGN §3.8 revised: every card is a
smart card).

A card issued through the API, the CLI or the vRA Manager holds its keys sealed in the card
key record under the roles ``authentication`` and ``content_commitment`` (and, where the
organisation gives cards a key-management key, ``key_management``) -- the roles the PC/SC
ports use for 9A, 9C and 9D. Its applet image is therefore what a card management system would
have written onto a blank card: the certificates in their containers, the key slots with the
certificates' algorithms, a CHUID (GUID = the card's UUID, expiry = the card's, signed by the
CA's content signer) and a CCC naming the card. No key is copied: the
image refers to the sealed keys exactly as a PC/SC-personalised card does, and the same
applet and the same ports run it.

What differs is administration: such a card has no management key (every 9B authentication
fails, so nothing on it can be rewritten from a reader) and no PUK (the PUK counter is
blocked; a blocked card PIN is unblocked by a fresh sign-in instead, services/piv/card_pin.py).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.card.piv import Algorithm, ObjectId, PivState, Slot, load_state
from cardvault.card.piv import objects as piv_objects
from cardvault.card.piv.asymmetric import GENERATABLE
from cardvault.card.piv.state import RetryCounter
from cardvault.crypto import keys as ckeys
from cardvault.crypto import x509 as cx509
from cardvault.services.piv.errors import NotReadyForReaders
from cardvault.store.models import Certificate, PivCard

__all__ = [
    "CERTIFICATE_SLOTS",
    "DesktopNames",
    "IssuedCertificate",
    "build_image",
    "desktop_names",
    "issued_certificates",
    "piv_serial",
    "with_certificates",
]

#: the card's certificate usages and the PIV slots that hold their keys
CERTIFICATE_SLOTS = {
    cx509.CertUsage.AUTHENTICATION: Slot.PIV_AUTHENTICATION,
    cx509.CertUsage.CONTENT_COMMITMENT: Slot.DIGITAL_SIGNATURE,
    cx509.CertUsage.KEY_MANAGEMENT: Slot.KEY_MANAGEMENT,
}
#: every card has these; the key-management certificate only where the organisation says so
_REQUIRED = (cx509.CertUsage.AUTHENTICATION, cx509.CertUsage.CONTENT_COMMITMENT)
_BY_KEY_ALGORITHM = {kind: alg for alg, kind in GENERATABLE.items()}
#: GET SERIAL answers eight decimal digits, as yubico-piv-tool shows them
_SERIAL_BASE, _SERIALS = 10_000_000, 90_000_000

ChuidSigner = Callable[[bytes], bytes]


@dataclass(frozen=True, kw_only=True)
class IssuedCertificate:
    """A valid certificate of the card, as the store keeps it (PEM)."""

    usage: cx509.CertUsage
    pem: str
    not_after: datetime


def piv_serial(card_serial: str) -> int:
    """The serial GET SERIAL reports (yubico-piv-tool's "Serial Number"): eight decimal
    digits derived from the card serial, so the same card always shows the same number. A
    card serial (50 bits) does not fit the YubiKey's 32-bit field, hence a digest."""
    digest = hashlib.sha256(b"cardvault piv serial\x00" + card_serial.encode("ascii")).digest()
    return _SERIAL_BASE + int.from_bytes(digest[:8], "big") % _SERIALS


def build_image(
    *,
    card_id: str,
    serial: str,
    certificates: Mapping[cx509.CertUsage, IssuedCertificate],
    sign: ChuidSigner | None = None,
) -> PivState:
    """The applet image of an issued card: certificates, key slots, CHUID (signed by ``sign``,
    the CA's content signer, if given), CCC; no management key, no PUK. Raises
    NotReadyForReaders if the card lacks a certificate."""
    guid = uuid.UUID(card_id).bytes
    state = PivState(
        serial=piv_serial(serial),
        management_algorithm=Algorithm.AES256,
        management_key_default=False,
        puk_tries=RetryCounter(left=0),
    )
    state = state.with_object(
        ObjectId.CARD_CAPABILITY_CONTAINER, piv_objects.card_capability_container(guid[:14])
    )
    return with_certificates(
        state, card_id=card_id, serial=serial, certificates=certificates, sign=sign
    )


def with_certificates(
    state: PivState,
    *,
    card_id: str,
    serial: str,
    certificates: Mapping[cx509.CertUsage, IssuedCertificate],
    sign: ChuidSigner | None = None,
) -> PivState:
    """``state`` with each slot's certificate container and key algorithm taken from the
    card's current certificates (after a renewal, the new ones; a key-management certificate
    once the organisation gives one), and a CHUID whose expiry is the card's."""
    for usage, slot in CERTIFICATE_SLOTS.items():
        found = certificates.get(usage)
        if found is None and usage in _REQUIRED:
            raise NotReadyForReaders(
                f"Card {serial} has no valid {usage.label} certificate, so it cannot be used "
                "in smartcard software yet.",
                remedy="Ask your RA to import or renew the card's certificates.",
            )
        if found is not None:
            state = _with_certificate(state, slot, found)
    return _with_chuid(state, uuid.UUID(card_id).bytes, _expiry(certificates), sign)


def _with_certificate(state: PivState, slot: Slot, found: IssuedCertificate) -> PivState:
    cert = cx509.load_certificate_pem(found.pem.encode())
    spki = ckeys.load_public_key_der(cx509.certificate_public_key_der(cert))
    algorithm = _BY_KEY_ALGORITHM[ckeys.algorithm_of(spki)]
    container = piv_objects.certificate_container(cx509.certificate_to_der(cert))
    return state.with_object(slot.certificate_object, container).with_key(slot, algorithm)


def _with_chuid(state: PivState, guid: bytes, expiry: str, sign: ChuidSigner | None) -> PivState:
    """The CHUID for ``guid`` and ``expiry``; signed again only when its content changed (a
    renewal moved the expiry), so opening a reader link does not re-sign every time."""
    content = piv_objects.chuid_signed_content(guid=guid, expiry=expiry)
    current = state.object(ObjectId.CHUID)
    unsigned = piv_objects.chuid(guid=guid, expiry=expiry)
    if current is not None and current.startswith(content) and (current != unsigned or not sign):
        return state
    signature = sign(content) if sign is not None else b""
    chuid = piv_objects.chuid(guid=guid, expiry=expiry, signature=signature)
    return state.with_object(ObjectId.CHUID, chuid)


def _expiry(certificates: Mapping[cx509.CertUsage, IssuedCertificate]) -> str:
    """The CHUID's expiry, the card's: the day the first of its certificates ends."""
    return min(found.not_after for found in certificates.values()).strftime("%Y%m%d")


def issued_certificates(session: Session, card_id: str) -> dict[cx509.CertUsage, IssuedCertificate]:
    """The card's valid certificates by usage (renewal replaces them)."""
    rows = session.scalars(
        select(Certificate).where(Certificate.card_id == card_id, Certificate.status == "valid")
    ).all()
    return {
        cx509.CertUsage(row.usage): IssuedCertificate(
            usage=cx509.CertUsage(row.usage), pem=row.pem, not_after=row.not_after
        )
        for row in rows
        if row.usage in {usage.value for usage in CERTIFICATE_SLOTS}
    }


@dataclass(frozen=True, kw_only=True)
class DesktopNames:
    """How smartcard software names the card, for the RA to match what a holder reads out:
    OpenSC's PKCS#11 token serial (``pkcs11-tool -L``, Firefox's device manager) and the
    serial yubico-piv-tool shows. Neither can be the card serial itself: a token serial is
    hex taken from the CHUID, the other a 32-bit number (docs/protocols/piv-applet.md)."""

    token_serial: str | None
    piv_serial: int


def desktop_names(session: Session, card_id: str) -> DesktopNames | None:
    """The card's names in smartcard software, or None while it has no applet."""
    piv = session.get(PivCard, card_id)
    if piv is None:
        return None
    state = load_state(piv.state.encode())
    chuid = state.object(ObjectId.CHUID)
    token = piv_objects.token_serial(chuid) if chuid is not None else None
    return DesktopNames(token_serial=token, piv_serial=state.serial)
