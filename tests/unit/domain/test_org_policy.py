"""An organisation's policy as stored JSON: parsed strictly, so a typo is refused, not ignored."""

from __future__ import annotations

import pytest

from cardvault.domain.org_policy import ALL_METHODS, OrganisationPolicy
from cardvault.errors import InvalidInput


def test_no_policy_is_the_documented_default() -> None:
    policy = OrganisationPolicy.from_dict(None)
    assert policy == OrganisationPolicy.from_dict({})
    assert policy.allowed_methods == ALL_METHODS
    assert policy.key_algorithm == "rsa2048"
    assert (policy.session_absolute_minutes, policy.session_idle_minutes) == (720, 60)
    assert policy.fido2_user_verification_required
    assert policy.fido2_allowed_aaguids is None


def test_lists_become_tuples_and_come_back_as_lists() -> None:
    stored = {"allowed_methods": ["email", "fido2"], "fido2_allowed_aaguids": ["a" * 32]}
    policy = OrganisationPolicy.from_dict(stored)
    assert policy.allowed_methods == ("email", "fido2")
    assert policy.fido2_allowed_aaguids == ("a" * 32,)
    again = policy.as_dict()
    assert again["allowed_methods"] == ["email", "fido2"]
    assert again["fido2_allowed_aaguids"] == ["a" * 32]
    assert OrganisationPolicy.from_dict(again) == policy


@pytest.mark.parametrize(
    ("stored", "says"),
    [
        ({"session_idle_minute": 5}, "Unknown policy settings: session_idle_minute."),
        ({"allowed_methods": ["email", "sms"]}, "Unknown authentication methods: sms."),
        ({"key_algorithm": "rsa1024"}, "key_algorithm must be one of"),
        ({"session_absolute_minutes": 4}, "session_absolute_minutes must be between 5"),
        ({"session_absolute_minutes": 60, "session_idle_minutes": 61}, "session_idle_minutes"),
        ({"reset_link_minutes": 1441}, "reset_link_minutes must be between 5 and 1440."),
        ({"totp_window": 4}, "totp_window must be between 0 and 3"),
    ],
)
def test_a_wrong_setting_is_refused_with_its_name(stored: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        OrganisationPolicy.from_dict(stored)  # type: ignore[arg-type]
    assert says in refused.value.message


def test_an_hr_card_needs_both_the_method_and_the_switch() -> None:
    assert OrganisationPolicy.from_dict({}).allows("hr_card")
    assert not OrganisationPolicy.from_dict({"hr_cards_allowed": False}).allows("hr_card")
    assert not OrganisationPolicy.from_dict({"allowed_methods": ["email"]}).allows("hr_card")
    assert OrganisationPolicy.from_dict({"allowed_methods": ["email"]}).allows("email")


def test_recovery_rules_agree_on_what_a_reset_follows_only() -> None:
    base = OrganisationPolicy()
    assert base.same_recovery_rules(OrganisationPolicy(session_idle_minutes=5))
    assert not base.same_recovery_rules(OrganisationPolicy(recovery_requires_second_factor=False))
    assert not base.same_recovery_rules(OrganisationPolicy(reset_link_minutes=10))
