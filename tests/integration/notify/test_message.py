"""Validation and normalisation of messages and addresses (pure; no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardvault.errors import InvalidInput
from cardvault.notify.message import (
    EmailMessage,
    HeaderInjection,
    InvalidEmailAddress,
    InvalidMessage,
    InvalidPhoneNumber,
    SmsMessage,
    normalise_email_address,
    normalise_phone_number,
)


def _email(**overrides: str) -> EmailMessage:
    fields = {"message_id": "m-1", "to": "ann@example.org", "subject": "Hi", "text": "Hello"}
    return EmailMessage(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("07700 900123", "+447700900123"),
        ("07700-900-123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("+44 (0)7700 900123", "+447700900123"),
        ("0044 7700 900123", "+447700900123"),
        ("+1 (202) 555-0143", "+12025550143"),
        (" +33 6 12 34 56 78 ", "+33612345678"),
    ],
)
def test_phone_numbers_normalise_to_e164(typed: str, e164: str) -> None:
    assert normalise_phone_number(typed) == e164


def test_national_number_takes_the_given_country_code() -> None:
    assert normalise_phone_number("06 12 34 56 78", country_code="33") == "+33612345678"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "12345",
        "+0123456789",
        "+44 7700 9001234567890",
        "07700 9OO123",
        "+44\uff17\uff17\uff10\uff10900123",  # full-width digits
    ],
)
def test_implausible_phone_numbers_are_refused(typed: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalise_phone_number(typed)


@given(
    country=st.integers(min_value=1, max_value=999),
    subscriber=st.integers(min_value=10**6, max_value=10**10),
    separators=st.lists(st.sampled_from([" ", "-", "."]), max_size=4),
)
def test_separators_never_change_a_normalised_number(
    country: int, subscriber: int, separators: list[str]
) -> None:
    e164 = f"+{country}{subscriber}"
    typed = "".join(
        ch + (separators[i] if i < len(separators) else "") for i, ch in enumerate(e164)
    )
    assert normalise_phone_number(typed) == normalise_phone_number(e164) == e164


def test_sms_message_normalises_its_recipient() -> None:
    sms = SmsMessage(message_id="s-1", to="07700 900123", text="hi")
    assert sms.to == "+447700900123"


def test_email_domain_is_lower_cased_but_local_part_kept() -> None:
    assert normalise_email_address(" Ann.Holder@Example.ORG ") == "Ann.Holder@example.org"


@pytest.mark.parametrize(
    "address",
    [
        "",
        "ann",
        "ann@",
        "@example.org",
        "ann@localhost",
        "ann@@example.org",
        "ann..h@example.org",
        ".ann@example.org",
        "ann holder@example.org",
        "ann@-example.org",
        "ann@example..org",
        "ann@127.0.0.1",
        "Ann <ann@example.org>",
        "ann@exämple.org",
        "a" * 65 + "@example.org",
    ],
)
def test_insane_email_addresses_are_refused(address: str) -> None:
    with pytest.raises(InvalidEmailAddress):
        normalise_email_address(address)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to", "ann@example.org\r\nBcc: eve@example.org"),
        ("to", "ann@example.org\n"),
        ("subject", "Hi\r\nBcc: eve@example.org"),
        ("subject", "Hi\x00"),
    ],
)
def test_line_breaks_in_headers_are_refused(field: str, value: str) -> None:
    with pytest.raises(HeaderInjection):
        _email(**{field: value})


@pytest.mark.parametrize("message_id", ["", ".hidden", "a/b", "a b", "<a@b>", "x" * 129, "é"])
def test_message_ids_unsafe_for_headers_or_file_names_are_refused(message_id: str) -> None:
    with pytest.raises(InvalidMessage):
        _email(message_id=message_id)


@pytest.mark.parametrize(("field", "value"), [("text", "  "), ("subject", ""), ("html", "")])
def test_empty_parts_are_refused(field: str, value: str) -> None:
    with pytest.raises(InvalidMessage):
        _email(**{field: value})


def test_too_long_sms_is_refused() -> None:
    with pytest.raises(InvalidMessage):
        SmsMessage(message_id="s-1", to="+447700900123", text="x" * 613)


def test_validation_errors_are_invalid_input_with_stable_codes() -> None:
    with pytest.raises(InvalidInput) as refused:
        _email(subject="a\nb")
    assert refused.value.code == "header_injection"
    assert refused.value.as_dict()["field"] == "subject"
