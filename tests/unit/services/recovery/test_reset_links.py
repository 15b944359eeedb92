"""Who may lift a lock with the emailed link: the holder, for locks their own wrong answers
caused; anyone an RA's unlock link was sent to, for any lock; never a revoked card."""

from __future__ import annotations

import pytest

from cardvault.domain.lockout import ATTEMPTS_LOCK_REASON, SECOND_FACTOR_LOCK_REASON
from cardvault.services.recovery.reset_links import may_self_unlock
from cardvault.store.models import Card


def _card(status: str, lock_reason: str | None = None) -> Card:
    return Card(status=status, lock_reason=lock_reason)


@pytest.mark.parametrize("reason", [ATTEMPTS_LOCK_REASON, SECOND_FACTOR_LOCK_REASON])
def test_the_holder_lifts_a_lock_their_wrong_answers_caused(reason: str) -> None:
    assert may_self_unlock(_card("locked", reason))


def test_an_active_card_may_reset_its_passcode() -> None:
    assert may_self_unlock(_card("active"))


def test_an_ra_lock_needs_the_ras_link() -> None:
    card = _card("locked", "reported stolen")
    assert not may_self_unlock(card)
    assert may_self_unlock(card, link_unlocks=True)


@pytest.mark.parametrize("status", ["revoked", "issued", "enrolled", "suspended"])
def test_other_cards_are_never_unlocked_by_a_link(status: str) -> None:
    assert not may_self_unlock(_card(status, ATTEMPTS_LOCK_REASON), link_unlocks=True)
