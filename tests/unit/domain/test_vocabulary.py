"""The domain vocabulary: what each status allows, and the catalogue of audit actions."""

from __future__ import annotations

import pytest

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import CardStatus, MethodKind, RaRole, SignInRoute


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


def test_only_the_auditor_is_not_alerted() -> None:
    assert [r for r in RaRole if not r.is_alerted] == [RaRole.AUDITOR]


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
