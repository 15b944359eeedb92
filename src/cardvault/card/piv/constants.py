"""The PIV vocabulary (SP 800-73-4 Part 1 §3, Part 2 §3; SP 800-78-4 Table 6-2) as enums.

Slots and algorithms carry their behaviour (which object holds a slot's certificate, whether
its key needs the PIN before every use, the block size of a management-key algorithm), so
handlers ask the enum rather than keep tables of their own.
"""

from __future__ import annotations

import re
from enum import IntEnum

from cardvault import __version__

__all__ = [
    "APPLET_VERSION",
    "ATR",
    "DEFAULT_MANAGEMENT_KEY",
    "PIV_AID",
    "YUBICO_OTP_AID",
    "Algorithm",
    "Ins",
    "ObjectId",
    "PinRef",
    "Slot",
]

#: the full PIV application identifier: RID A0 00 00 03 08, PIX 00 00 10 00 01 00
PIV_AID = bytes.fromhex("A000000308000010000100")
PIV_PIX = PIV_AID[5:]
PIV_RID = PIV_AID[:5]

#: T=1, historical bytes 80 + compact-TLV F9 carrying the PIV AID: OpenSC's PIV_II_HIST type
ATR = bytes.fromhex("3B 8B 80 01 80 F9 A0 00 00 03 08 00 00 10 00 C8")

#: the YubiKey OTP application: yubico-piv-tool selects it to read the serial of a card whose
#: version is below 5 (this card's: ``APPLET_VERSION``), then selects PIV again
YUBICO_OTP_AID = bytes.fromhex("A000000527200101")

#: what GET VERSION answers: cardvault's own version (major, minor, patch), not a YubiKey's
APPLET_VERSION = bytes(int(part) for part in re.findall(r"\d+", __version__)[:3])

#: the well-known 3DES management key of blank cards; accepted only while the card is blank
DEFAULT_MANAGEMENT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")


class Ins(IntEnum):
    """Instructions: SP 800-73-4 Part 2 §3, plus the YubiKey ones yubico-piv-tool sends."""

    VERIFY = 0x20
    CHANGE_REFERENCE_DATA = 0x24
    RESET_RETRY_COUNTER = 0x2C
    GENERATE_ASYMMETRIC_KEY_PAIR = 0x47
    GET_CHALLENGE = 0x84  # ISO 7816-4 §11.5.3
    GENERAL_AUTHENTICATE = 0x87
    SELECT = 0xA4
    GET_RESPONSE = 0xC0
    GET_DATA = 0xCB
    PUT_DATA = 0xDB
    # YubiKey extensions (yubico-piv-tool); the standard instructions never depend on them
    OTP_REQUEST = 0x01  # the OTP application's request; P1 10 = the device serial
    GET_SERIAL = 0xF8
    GET_VERSION = 0xFD
    SET_MANAGEMENT_KEY = 0xFF


class Algorithm(IntEnum):
    """Cryptographic mechanism identifiers (SP 800-78-4 Table 6-2)."""

    TDES = 0x03
    AES128 = 0x08
    AES192 = 0x0A
    AES256 = 0x0C
    RSA1024 = 0x06
    RSA2048 = 0x07
    RSA3072 = 0x05
    ECC_P256 = 0x11
    ECC_P384 = 0x14

    @property
    def is_symmetric(self) -> bool:
        return self in _SYMMETRIC_KEY_BYTES

    @property
    def is_rsa(self) -> bool:
        return self in _RSA_BYTES

    @property
    def is_ec(self) -> bool:
        return self in _EC_FIELD_BYTES

    @property
    def key_bytes(self) -> int:
        """Management key length (symmetric) or modulus / field length in bytes."""
        return (_SYMMETRIC_KEY_BYTES | _RSA_BYTES | _EC_FIELD_BYTES)[self]

    @property
    def block_bytes(self) -> int:
        """The cipher block: the size of management-key challenges."""
        if not self.is_symmetric:
            raise ValueError(f"{self.name} is not a block cipher")
        return 8 if self is Algorithm.TDES else 16


_SYMMETRIC_KEY_BYTES = {
    Algorithm.TDES: 24,
    Algorithm.AES128: 16,
    Algorithm.AES192: 24,
    Algorithm.AES256: 32,
}
_RSA_BYTES = {Algorithm.RSA1024: 128, Algorithm.RSA2048: 256, Algorithm.RSA3072: 384}
_EC_FIELD_BYTES = {Algorithm.ECC_P256: 32, Algorithm.ECC_P384: 48}


class ObjectId(IntEnum):
    """Data object tags (SP 800-73-4 Part 1 Table 3), inside the ``5C`` tag list."""

    DISCOVERY = 0x7E
    BITGT = 0x7F61
    CARD_CAPABILITY_CONTAINER = 0x5FC107
    CHUID = 0x5FC102
    CERT_PIV_AUTHENTICATION = 0x5FC105
    FINGERPRINTS = 0x5FC103
    SECURITY_OBJECT = 0x5FC106
    FACIAL_IMAGE = 0x5FC108
    PRINTED_INFORMATION = 0x5FC109
    CERT_DIGITAL_SIGNATURE = 0x5FC10A
    CERT_KEY_MANAGEMENT = 0x5FC10B
    CERT_CARD_AUTHENTICATION = 0x5FC101
    KEY_HISTORY = 0x5FC10C
    RETIRED_CERT_1 = 0x5FC10D
    RETIRED_CERT_20 = 0x5FC120
    IRIS_IMAGES = 0x5FC121
    BIOMETRIC_GROUP_TEMPLATE = 0x5FC122
    SM_CERT_SIGNER = 0x5FC123
    YUBICO_FIRST = 0x5FFF00
    YUBICO_LAST = 0x5FFF1F

    @classmethod
    def writable(cls, tag: int) -> bool:
        """Objects PUT DATA may write: the 5FC1xx containers and YubiKey's 5FFFxx objects."""
        return 0x5FC101 <= tag <= cls.SM_CERT_SIGNER or cls.YUBICO_FIRST <= tag <= cls.YUBICO_LAST

    @classmethod
    def needs_pin(cls, tag: int) -> bool:
        """Objects that are read only after VERIFY (SP 800-73-4 Part 1 Table 3: "PIN")."""
        return tag in _PIN_PROTECTED


_PIN_PROTECTED = frozenset(
    {
        ObjectId.FINGERPRINTS,
        ObjectId.FACIAL_IMAGE,
        ObjectId.PRINTED_INFORMATION,
        ObjectId.IRIS_IMAGES,
        ObjectId.BIOMETRIC_GROUP_TEMPLATE,
    }
)


class Slot(IntEnum):
    """Key references (SP 800-73-4 Part 1 Table 4b)."""

    CARD_MANAGEMENT = 0x9B
    PIV_AUTHENTICATION = 0x9A
    DIGITAL_SIGNATURE = 0x9C
    KEY_MANAGEMENT = 0x9D
    CARD_AUTHENTICATION = 0x9E
    RETIRED_1 = 0x82
    RETIRED_2 = 0x83
    RETIRED_3 = 0x84
    RETIRED_4 = 0x85
    RETIRED_5 = 0x86
    RETIRED_6 = 0x87
    RETIRED_7 = 0x88
    RETIRED_8 = 0x89
    RETIRED_9 = 0x8A
    RETIRED_10 = 0x8B
    RETIRED_11 = 0x8C
    RETIRED_12 = 0x8D
    RETIRED_13 = 0x8E
    RETIRED_14 = 0x8F
    RETIRED_15 = 0x90
    RETIRED_16 = 0x91
    RETIRED_17 = 0x92
    RETIRED_18 = 0x93
    RETIRED_19 = 0x94
    RETIRED_20 = 0x95

    @property
    def is_asymmetric(self) -> bool:
        return self is not Slot.CARD_MANAGEMENT

    @property
    def pin_always(self) -> bool:
        """The digital signature key needs VERIFY right before every use (Part 1 §3.3.2)."""
        return self is Slot.DIGITAL_SIGNATURE

    @property
    def needs_pin(self) -> bool:
        """Card authentication (9E) is usable without the PIN; every other private key is not."""
        return self is not Slot.CARD_AUTHENTICATION

    @property
    def is_key_management(self) -> bool:
        """Keys meant for decryption / key agreement: 9D and the retired key management keys."""
        return self is Slot.KEY_MANAGEMENT or Slot.RETIRED_1 <= self <= Slot.RETIRED_20

    @property
    def certificate_object(self) -> ObjectId | int:
        """The data object holding this slot's X.509 certificate."""
        if self in _CERT_OBJECTS:
            return _CERT_OBJECTS[self]
        if self.is_key_management and self is not Slot.KEY_MANAGEMENT:
            return ObjectId.RETIRED_CERT_1 + (self - Slot.RETIRED_1)
        raise ValueError(f"slot {self.name} has no certificate")


_CERT_OBJECTS = {
    Slot.PIV_AUTHENTICATION: ObjectId.CERT_PIV_AUTHENTICATION,
    Slot.DIGITAL_SIGNATURE: ObjectId.CERT_DIGITAL_SIGNATURE,
    Slot.KEY_MANAGEMENT: ObjectId.CERT_KEY_MANAGEMENT,
    Slot.CARD_AUTHENTICATION: ObjectId.CERT_CARD_AUTHENTICATION,
}


class PinRef(IntEnum):
    """Key references of the card's reference data (Part 1 Table 4a)."""

    GLOBAL_PIN = 0x00
    PIV_PIN = 0x80
    PUK = 0x81
