"""The one sign-in field of the vRA Manager: an email address or a Windows account."""

from __future__ import annotations

import pytest

from cardvault.domain.identifiers import sign_in_identifier
from cardvault.errors import InvalidInput


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Rana@Example.org", ("email", "rana@example.org")),
        ("  rana@example.org  ", ("email", "rana@example.org")),
        ("HOSPITAL\\jsmith", ("ad_account", "HOSPITAL\\jsmith")),
        (" hospital.local\\J Smith ", ("ad_account", "hospital.local\\J Smith")),
    ],
)
def test_an_email_address_or_a_windows_account_is_told_apart_by_its_form(
    typed: str, expected: tuple[str, str]
) -> None:
    assert sign_in_identifier(typed) == expected


@pytest.mark.parametrize(
    ("typed", "field", "message"),
    [
        ("", "identifier", "Enter your email address or Windows account."),
        ("   ", "identifier", "Enter your email address or Windows account."),
        ("jsmith", "identifier", "or your Windows account as DOMAIN\\name, like HOSPITAL\\jsmith"),
        ("rana@", "email", "Enter an email address in the right format"),
        ("rana@exa mple.org", "email", "Enter an email address in the right format"),
        ("\\jsmith", "domain", "Enter the AD domain"),
        ("HOSPITAL\\", "account", "Enter the AD account name"),
    ],
)
def test_neither_is_refused_with_what_to_type(typed: str, field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        sign_in_identifier(typed)
    assert refused.value.field == field
    assert message in refused.value.message
