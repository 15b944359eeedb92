"""Validation and normalisation of the identifiers people type.

Each function returns the canonical form or raises ``InvalidInput`` with a message that
names the field and says what is expected.
"""

from __future__ import annotations

import re
import secrets
import unicodedata

from cardvault.errors import InvalidInput

_USER_ID = re.compile(r"\d{12}")
_ORG_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{1,31}")
_EMAIL = re.compile(
    r"[^@\s<>()\[\],;:\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*"
)
_SERIAL = re.compile(r"CV[0-9A-HJKMNP-TV-Z]{10}")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_AD_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,62}")
_HEX_UID = re.compile(r"(?:[0-9A-F]{2}){4,10}")


def user_id(value: str) -> str:
    """The 12-digit user id of the national directory; spaces between groups allowed."""
    cleaned = re.sub(r"[\s-]", "", value or "")
    if not _USER_ID.fullmatch(cleaned):
        raise InvalidInput(
            "A user id is exactly 12 digits, for example 555 123 456 789.", field="user_id"
        )
    return cleaned


def org_code(value: str) -> str:
    cleaned = (value or "").strip().upper()
    if not _ORG_CODE.fullmatch(cleaned):
        raise InvalidInput(
            "An organisation code is 2 to 32 letters, digits, '-' or '_', starting with a "
            "letter or digit.",
            field="code",
        )
    return cleaned


def email(value: str) -> str:
    """Lower-cased address; the domain must look like one."""
    cleaned = (value or "").strip()
    if len(cleaned) > 254 or not _EMAIL.fullmatch(cleaned):
        raise InvalidInput(
            "Enter an email address in the right format, like name@example.org.", field="email"
        )
    return cleaned.lower()


def person_name(value: str, *, field: str) -> str:
    cleaned = " ".join(unicodedata.normalize("NFC", value or "").split())
    if not cleaned:
        raise InvalidInput(f"Enter the {field.replace('_', ' ')}.", field=field)
    if len(cleaned) > 100 or any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise InvalidInput(
            f"The {field.replace('_', ' ')} must be at most 100 printable characters.", field=field
        )
    return cleaned


def phone(value: str) -> str:
    """E.164; national UK numbers (07…) are turned into +44…"""
    cleaned = re.sub(r"[\s()-]", "", value or "")
    if cleaned.startswith("0") and not cleaned.startswith("00"):
        cleaned = "+44" + cleaned[1:]
    elif cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if not re.fullmatch(r"\+[1-9]\d{7,14}", cleaned):
        raise InvalidInput(
            "Enter a phone number like 07700 900123 or +44 7700 900123.", field="phone"
        )
    return cleaned


def card_serial(value: str) -> str:
    cleaned = re.sub(r"[\s-]", "", value or "").upper()
    if not _SERIAL.fullmatch(cleaned):
        raise InvalidInput(
            "A card serial looks like CV followed by 10 letters and digits.", field="serial"
        )
    return cleaned


def new_card_serial() -> str:
    return "CV" + "".join(secrets.choice(_CROCKFORD) for _ in range(10))


def ad_account(domain: str, account: str) -> tuple[str, str]:
    """Case-insensitive AD names: stored upper-case domain, lower-case account."""
    d, a = (domain or "").strip(), (account or "").strip()
    if not _AD_PART.fullmatch(d):
        raise InvalidInput("Enter the AD domain, like NHS or HOSPITAL.LOCAL.", field="domain")
    if not _AD_PART.fullmatch(a):
        raise InvalidInput("Enter the AD account name, like jsmith.", field="account")
    return d.upper(), a.lower()


def parse_ad_login(value: str) -> tuple[str, str]:
    r"""``DOMAIN\account`` or ``account@domain`` as typed at the PC."""
    text = (value or "").strip()
    if "\\" in text:
        domain, _, account = text.partition("\\")
    elif "@" in text:
        account, _, domain = text.partition("@")
    else:
        raise InvalidInput(r"Enter the AD account as DOMAIN\name.", field="ad_account")
    return ad_account(domain, account)


def sign_in_identifier(value: str) -> tuple[str, str]:
    r"""What someone typed in one sign-in field: ``("email", address)`` for an email
    address, ``("ad_account", text)`` for a Windows account typed as ``DOMAIN\name``.

    A backslash makes it a Windows account, an ``@`` an email address (``name@domain``
    is never read as an AD account here: it would be ambiguous); anything else is refused.
    """
    text = (value or "").strip()
    if not text:
        raise InvalidInput("Enter your email address or Windows account.", field="identifier")
    if "\\" in text:
        parse_ad_login(text)
        return "ad_account", text
    if "@" in text:
        return "email", email(text)
    raise InvalidInput(
        "Enter your email address, like name@example.org, or your Windows account as "
        "DOMAIN\\name, like HOSPITAL\\jsmith.",
        field="identifier",
    )


def hr_card_uid(value: str) -> str:
    """A Mifare UID (4, 7 or 10 bytes) as upper-case hex, from any reader's formatting."""
    cleaned = re.sub(r"[\s:.-]", "", value or "").upper()
    if not _HEX_UID.fullmatch(cleaned) or len(cleaned) // 2 not in (4, 7, 10):
        raise InvalidInput(
            "An HR card number is 4, 7 or 10 bytes in hexadecimal, like 04:A2:2B:1A:C3:5E:80.",
            field="uid",
        )
    return cleaned
