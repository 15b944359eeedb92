"""Certificate subject names from a template an organisation configures (DESIGN §3.1).

An organisation writes its subject naming as an RFC 4514-style template, most specific
attribute first, for example ``CN={common_name},serialNumber={user_id},O={organisation_name},C=GB``.
The template is parsed once into attribute keys and placeholders; the card holder's values are
then put into ``NameAttribute`` objects one by one. The filled-in string is never parsed, so a
value such as ``"Smith, O=Evil"`` stays one attribute value and cannot create another attribute.
"""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from enum import StrEnum

from cryptography import x509
from cryptography.x509.oid import NameOID

from cardvault.errors import InvalidInput, error

DEFAULT_SUBJECT_TEMPLATE = "CN={common_name},serialNumber={user_id},O={organisation_name}"

#: characters allowed in an ASN.1 PrintableString (X.680 §41.4)
_PRINTABLE = frozenset(string.ascii_letters + string.digits + " '()+,-./:=?")


class SubjectTemplateInvalid(InvalidInput):
    """The organisation's subject template cannot be used; found when it is configured."""

    code = "subject_template_invalid"


@error
class SubjectValueInvalid(InvalidInput):
    """A card holder's value cannot go into the subject (empty, too long, wrong characters)."""

    code = "subject_value_invalid"
    attribute: str


class _Charset(StrEnum):
    UTF8 = "utf8"
    PRINTABLE = "printable"
    IA5 = "ia5"
    COUNTRY = "country"


@dataclass(frozen=True, kw_only=True)
class _Attribute:
    key: str
    oid: x509.ObjectIdentifier
    max_length: int
    charset: _Charset = _Charset.UTF8
    repeatable: bool = False


# Upper bounds from X.520 / RFC 5280 Appendix A (ub-common-name 64, ub-email-address 255, ...).
_ATTRIBUTES = {
    a.key.lower(): a
    for a in (
        _Attribute(key="CN", oid=NameOID.COMMON_NAME, max_length=64),
        _Attribute(
            key="serialNumber",
            oid=NameOID.SERIAL_NUMBER,
            max_length=64,
            charset=_Charset.PRINTABLE,
        ),
        _Attribute(key="O", oid=NameOID.ORGANIZATION_NAME, max_length=64),
        _Attribute(key="OU", oid=NameOID.ORGANIZATIONAL_UNIT_NAME, max_length=64, repeatable=True),
        _Attribute(key="C", oid=NameOID.COUNTRY_NAME, max_length=2, charset=_Charset.COUNTRY),
        _Attribute(key="L", oid=NameOID.LOCALITY_NAME, max_length=128),
        _Attribute(key="ST", oid=NameOID.STATE_OR_PROVINCE_NAME, max_length=128),
        _Attribute(
            key="emailAddress", oid=NameOID.EMAIL_ADDRESS, max_length=255, charset=_Charset.IA5
        ),
        _Attribute(key="givenName", oid=NameOID.GIVEN_NAME, max_length=64),
        _Attribute(key="surname", oid=NameOID.SURNAME, max_length=64),
        _Attribute(key="UID", oid=NameOID.USER_ID, max_length=64),
    )
}
_ATTRIBUTES["sn"] = _ATTRIBUTES["surname"]


@dataclass(frozen=True, kw_only=True)
class SubjectFields:
    """What a template may refer to as ``{placeholder}``: the card holder and organisation."""

    common_name: str
    user_id: str
    organisation_name: str
    organisation_code: str
    email: str | None = None
    given_name: str | None = None
    surname: str | None = None


_PLACEHOLDERS = tuple(f.name for f in dataclass_fields(SubjectFields))


@dataclass(frozen=True, kw_only=True)
class _Part:
    attribute: _Attribute
    #: (literal text, placeholder name or None), in order
    pieces: tuple[tuple[str, str | None], ...]


def check_subject_template(template: str) -> None:
    """Raise SubjectTemplateInvalid unless ``template`` can be used; for the policy editor."""
    _parse_template(template)


def render_subject(template: str, fields: SubjectFields) -> x509.Name:
    """Fill the template with the card holder's values, one NameAttribute per attribute.

    Attributes are written most specific first (RFC 4514 order), so the encoded Name holds them
    in reverse, and ``name.rfc4514_string()`` gives the filled-in template back.
    """
    parts = _parse_template(template)
    attributes = [_attribute(part, _fill(part, fields)) for part in parts]
    return x509.Name(list(reversed(attributes)))


def _parse_template(template: str) -> tuple[_Part, ...]:
    if not template.strip():
        raise SubjectTemplateInvalid("The subject template is empty.")
    parts = tuple(_parse_part(component) for component in template.split(","))
    seen: set[str] = set()
    for part in parts:
        if part.attribute.key in seen and not part.attribute.repeatable:
            raise SubjectTemplateInvalid(
                f"The subject template names {part.attribute.key} more than once."
            )
        seen.add(part.attribute.key)
        if all(name is None for _, name in part.pieces):
            _check_fixed_value(part)
    return parts


def _check_fixed_value(part: _Part) -> None:
    try:
        _attribute(part, "".join(text for text, _ in part.pieces))
    except SubjectValueInvalid as exc:
        raise SubjectTemplateInvalid(f"In the subject template: {exc.message}") from exc


def _parse_part(component: str) -> _Part:
    key, sep, value = component.partition("=")
    if not sep:
        raise SubjectTemplateInvalid(
            f"Each part of the subject template must look like KEY=value; {component.strip()!r} "
            "does not. (Fixed text cannot contain a comma.)"
        )
    attribute = _ATTRIBUTES.get(key.strip().lower())
    if attribute is None:
        known = ", ".join(sorted({a.key for a in _ATTRIBUTES.values()}))
        raise SubjectTemplateInvalid(
            f"The subject template uses the attribute {key.strip()!r}, which is not supported. "
            f"Use one of: {known}."
        )
    for char in '+=\\"':
        if char in value:
            raise SubjectTemplateInvalid(
                f"The value of {attribute.key} in the subject template contains {char!r}; "
                'fixed text in a template cannot contain = + \\ or ".'
            )
    return _Part(attribute=attribute, pieces=_parse_value(attribute, value.strip()))


def _parse_value(attribute: _Attribute, value: str) -> tuple[tuple[str, str | None], ...]:
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise SubjectTemplateInvalid(
            f"The value of {attribute.key} in the subject template has unbalanced braces."
        ) from exc
    pieces: list[tuple[str, str | None]] = []
    for text, name, spec, conversion in parsed:
        if name is not None and (name not in _PLACEHOLDERS or spec or conversion):
            raise SubjectTemplateInvalid(
                f"The subject template uses the placeholder {{{name}}}, which is not supported. "
                f"Use one of: {', '.join('{' + p + '}' for p in _PLACEHOLDERS)}."
            )
        pieces.append((text, name))
    return tuple(pieces)


def _fill(part: _Part, subject_fields: SubjectFields) -> str:
    out: list[str] = []
    for text, name in part.pieces:
        out.append(text)
        if name is not None:
            value = getattr(subject_fields, name)
            if value is None:
                raise SubjectValueInvalid(
                    f"The subject template needs {{{name}}} for {part.attribute.key}, "
                    "but this card holder has none recorded.",
                    attribute=part.attribute.key,
                )
            out.append(value)
    return "".join(out)


def _attribute(part: _Part, raw: str) -> x509.NameAttribute[str]:
    attribute = part.attribute
    value = raw.strip()
    _check_value(attribute, value)
    return x509.NameAttribute(attribute.oid, value)


def _check_value(attribute: _Attribute, value: str) -> None:
    key = attribute.key
    if not value:
        raise SubjectValueInvalid(f"The subject's {key} would be empty.", attribute=key)
    if any(unicodedata.category(char)[0] == "C" for char in value):
        raise SubjectValueInvalid(
            f"The subject's {key} contains control or formatting characters.", attribute=key
        )
    if not _charset_ok(attribute.charset, value):
        raise SubjectValueInvalid(_charset_message(attribute), attribute=key)
    if len(value) > attribute.max_length:
        raise SubjectValueInvalid(
            f"The subject's {key} is longer than {attribute.max_length} characters.",
            attribute=key,
        )


def _charset_ok(charset: _Charset, value: str) -> bool:
    if charset is _Charset.PRINTABLE:
        return all(char in _PRINTABLE for char in value)
    if charset is _Charset.IA5:
        return value.isascii() and value.count("@") == 1
    if charset is _Charset.COUNTRY:
        return len(value) == 2 and value.isascii() and value.isalpha() and value.isupper()
    return True


def _charset_message(attribute: _Attribute) -> str:
    if attribute.charset is _Charset.COUNTRY:
        return "The subject's C must be a two-letter country code in capitals, such as GB."
    if attribute.charset is _Charset.IA5:
        return f"The subject's {attribute.key} must be a plain ASCII email address."
    return (
        f"The subject's {attribute.key} may contain only letters A-Z, digits, spaces "
        "and ' ( ) + , - . / : = ?"
    )
