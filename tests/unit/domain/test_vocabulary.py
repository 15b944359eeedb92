"""The domain vocabulary: what each status allows, and the catalogue of audit actions."""

from __future__ import annotations

import pytest

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import (
    CardStatus,
    MethodKind,
    RaPermission,
    RaRole,
    SignInRoute,
    roles_allowed,
)


@pytest.mark.parametrize(
    ("status", "live", "awaiting_enrolment", "lockable"),
    [
        (CardStatus.BLANK, True, False, False),
        (CardStatus.ISSUED, True, True, True),
        (CardStatus.ENROLLED, True, True, True),
        (CardStatus.ACTIVE, True, False, True),
        (CardStatus.LOCKED, True, False, False),
        (CardStatus.REVOKED, False, False, False),
    ],
)
def test_what_each_card_status_allows(
    status: CardStatus, live: bool, awaiting_enrolment: bool, lockable: bool
) -> None:
    assert status.is_live is live
    assert status.is_awaiting_enrolment is awaiting_enrolment
    assert status.is_lockable is lockable


def test_only_the_managers_and_agents_are_alerted() -> None:
    assert [r for r in RaRole if r.is_alerted] == [RaRole.RA_MANAGER, RaRole.RA_AGENT]


def test_the_ra_manager_holds_every_permission_and_only_the_manager_grants_roles() -> None:
    assert RaRole.RA_MANAGER.permissions == frozenset(RaPermission)
    assert roles_allowed(RaPermission.GRANT_ROLES) == ("ra_manager",)
    assert roles_allowed(RaPermission.MANAGE_SETTINGS) == ("ra_manager",)


def test_the_sponsor_may_approve_cards_and_nothing_else() -> None:
    assert RaRole.SPONSOR.permissions == {RaPermission.APPROVE_CARDS}
    assert roles_allowed(RaPermission.APPROVE_CARDS) == ("ra_manager", "sponsor")


def test_the_auditor_reads_people_and_the_audit_log_and_changes_nothing() -> None:
    assert RaRole.AUDITOR.permissions == {RaPermission.VIEW_PEOPLE, RaPermission.READ_AUDIT}
    assert not RaRole.AUDITOR.allows(RaPermission.MANAGE_CARDS)


def test_the_agent_looks_after_people_cards_and_methods_but_grants_and_sets_nothing() -> None:
    agent = RaRole.RA_AGENT
    assert agent.allows(RaPermission.MANAGE_PEOPLE)
    assert agent.allows(RaPermission.MANAGE_CARDS)
    assert not agent.allows(RaPermission.GRANT_ROLES)
    assert not agent.allows(RaPermission.MANAGE_SETTINGS)
    assert not agent.allows(RaPermission.APPROVE_CARDS)


def test_only_ad_accounts_and_hr_cards_show_their_identifier() -> None:
    shown = {k for k in MethodKind if k.has_public_identifier}
    assert shown == {MethodKind.AD_ACCOUNT, MethodKind.HR_CARD}


def test_a_member_equals_the_string_the_database_holds() -> None:
    assert CardStatus("revoked") is CardStatus.REVOKED
    assert SignInRoute.SECURITY_KEY == "fido2"
    assert f"{SignInRoute.QR}+device" == "qr+device"  # how a card session records its route
    with pytest.raises(ValueError, match="'lost' is not a valid CardStatus"):
        CardStatus("lost")


def test_audit_actions_have_one_member_per_code_and_a_namespace() -> None:
    assert len({a.value for a in AuditAction}) == len(AuditAction)
    assert AuditAction.PIV_PUK_CHANGED.namespace == "piv"
    assert AuditAction.SECURITY_KEY_SIGN_IN.namespace == "fido2"
