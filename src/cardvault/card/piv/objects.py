"""The PIV data objects the card answers with (SP 800-73-4 Part 1 §3.1, Appendix A).

Each builder returns the *content* of a container -- what goes inside tag ``53`` of a GET DATA
answer -- except the Discovery object and the SELECT answer, which have their own outer tags.
"""

from __future__ import annotations

from collections.abc import Iterable

from cardvault.card import tlv
from cardvault.card.piv.constants import PIV_PIX, PIV_RID, Algorithm

__all__ = [
    "application_property_template",
    "card_capability_container",
    "certificate",
    "certificate_container",
    "chuid",
    "chuid_signed_content",
    "discovery",
    "key_history",
    "token_serial",
]

#: PIN usage policy 40 00: the PIV PIN only (60 20 would make OpenSC use the global PIN)
_PIN_USAGE_POLICY = bytes((0x40, 0x00))
_NO_FASC_N = bytes.fromhex("D4E739DA739CED39CE739D836858210842108421C84210C3EB")
#: the start of a FASC-N whose agency code is 9999 (a non-federal issuer): SS 9 9 9 9
_AGENCY_9999 = bytes.fromhex("D4E739")
#: PKCS#11 token serials are 16 characters (CK_TOKEN_INFO.serialNumber)
_TOKEN_SERIAL_CHARS = 16


def discovery() -> bytes:
    """The Discovery object, tag ``7E`` (Part 1 §3.3.2): the AID and the PIN usage policy."""
    body = tlv.encode(0x4F, PIV_RID + PIV_PIX) + tlv.encode(0x5F2F, _PIN_USAGE_POLICY)
    return tlv.encode(0x7E, body)


def application_property_template(label: str, algorithms: Iterable[Algorithm]) -> bytes:
    """The SELECT answer, tag ``61`` (Part 2 §3.1.1): PIX, authority, label, algorithms."""
    supported = b"".join(tlv.encode(0x80, bytes((alg,))) for alg in algorithms)
    body = tlv.encode_all(
        (
            (0x4F, PIV_PIX),
            (0x79, tlv.encode(0x4F, PIV_RID)),
            (0x50, label.encode("ascii")),
            (0xAC, supported + tlv.encode(0x06, b"")),
        )
    )
    return tlv.encode(0x61, body)


def chuid(*, guid: bytes, expiry: str = "20991231", signature: bytes = b"") -> bytes:
    """Card Holder Unique Identifier (Part 1 §3.1.2, TIG SCEPACS) with a GUID and no FASC-N
    agency code: OpenSC takes the token serial from the GUID. ``signature`` is the issuer
    asymmetric signature (``3E``) over :func:`chuid_signed_content`, or empty."""
    return chuid_signed_content(guid=guid, expiry=expiry) + tlv.encode_all(
        ((0x3E, signature), (0xFE, b""))
    )


def chuid_signed_content(*, guid: bytes, expiry: str) -> bytes:
    """The CHUID's fields the issuer signature covers: everything before ``3E``."""
    if len(guid) != 16 or len(expiry) != 8 or not expiry.isdigit():
        raise ValueError("a CHUID needs a 16-byte GUID and a YYYYMMDD expiry")
    return tlv.encode_all(((0x30, _NO_FASC_N), (0x34, guid), (0x35, expiry.encode())))


def token_serial(chuid_content: bytes) -> str | None:
    """The token serial OpenSC's PKCS#11 module shows for a card with this CHUID, or None.

    OpenSC 0.23 (card-piv.c, ``piv_get_serial_nr_from_CHUI``) takes the GUID when it is not all
    zero and the FASC-N's agency code is 9999, else the FASC-N; ``pkcs15-piv.c`` writes it as
    lowercase hex, and ``framework-pkcs15.c`` keeps the last 16 characters. A CHUID with the
    card's UUID as GUID therefore shows as the UUID's last 16 hex digits."""
    try:
        items = tlv.decode_map(chuid_content)
    except tlv.TlvError:
        return None
    fasc_n, guid = items.get(0x30, b""), items.get(0x34, b"")
    guid_usable = len(guid) == 16 and any(guid)
    agency_9999 = fasc_n[:3] == _AGENCY_9999 and len(fasc_n) > 3 and fasc_n[3] & 0x80 != 0
    if len(fasc_n) == 25 and not (guid_usable and agency_9999):
        return fasc_n.hex()[-_TOKEN_SERIAL_CHARS:]
    return guid.hex()[-_TOKEN_SERIAL_CHARS:] if guid_usable else None


def card_capability_container(card_identifier: bytes) -> bytes:
    """Card Capability Container (Part 1 §3.1.1); F3 stays empty so OpenSC does not take it
    for a CAC card."""
    if len(card_identifier) != 14:
        raise ValueError("the card identifier is 14 bytes (after the 7-byte GSC-RID prefix)")
    return tlv.encode_all(
        (
            (0xF0, bytes.fromhex("A0000001160000") + card_identifier),
            (0xF1, b"\x21"),
            (0xF2, b"\x21"),
            (0xF3, b""),
            (0xF4, b"\x00"),
            (0xF5, b"\x10"),
            (0xF6, b""),
            (0xF7, b""),
            (0xFA, b""),
            (0xFB, b""),
            (0xFC, b""),
            (0xFD, b""),
            (0xFE, b""),
        )
    )


def certificate_container(der: bytes) -> bytes:
    """An X.509 certificate container (Part 1 Appendix A): 70 cert, 71 CertInfo 00 (not
    compressed), FE error detection code (empty)."""
    return tlv.encode_all(((0x70, der), (0x71, b"\x00"), (0xFE, b"")))


def certificate(container: bytes) -> bytes:
    """The DER certificate inside a certificate container."""
    found = tlv.decode_map(container)
    if 0x70 not in found or found.get(0x71, b"\x00") != b"\x00":
        raise tlv.TlvError("not an uncompressed certificate container")
    return found[0x70]


def key_history(*, on_card: int, off_card: int, url: str | None = None) -> bytes:
    """Key History object (Part 1 §3.3.1): how many retired certificates are on / off card."""
    if not (0 <= on_card <= 20 and 0 <= off_card <= 20) or (off_card and not url):
        raise ValueError("0-20 retired keys each; off-card certificates need a URL")
    items = [(0xC1, bytes((on_card,))), (0xC2, bytes((off_card,)))]
    if url:
        items.append((0xF3, url.encode("ascii")))
    items.append((0xFE, b""))
    return tlv.encode_all(items)
