"""Refusals of one-time codes: a replay does not count towards the lock, a wrong code does,
and of several refusals the one that tells the holder most is shown."""

from __future__ import annotations

from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors.codes import WRONG, refusal, telling


def test_a_wrong_code_counts_and_says_to_check_the_phones_time() -> None:
    wrong = refusal(replayed=False)
    assert wrong.code == WRONG
    assert wrong.counts
    assert "Check the time on your phone" in wrong.message


def test_a_replayed_code_does_not_count_and_says_to_wait() -> None:
    replayed = refusal(replayed=True)
    assert replayed.code == "totp_replayed"
    assert not replayed.counts
    assert "already been used" in replayed.message


def test_the_most_telling_refusal_wins_over_plain_wrong_ones() -> None:
    wrong, replayed = refusal(replayed=False), refusal(replayed=True)
    assert telling([wrong, replayed, wrong]) is replayed
    assert telling([wrong, wrong]) is wrong
    denied = FactorFailed("You denied this sign-in.", reason="push denied", code="push_denied")
    assert telling([wrong, denied, replayed]) is denied
