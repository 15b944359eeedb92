"""The kept answer of a link's last request: readable only with the caller's key, for that
link and sequence number."""

from __future__ import annotations

import secrets

import pytest

from cardvault.services.piv.kept import keep, kept
from cardvault.services.signin.errors import SessionInvalid


def test_the_caller_reads_back_the_answer_and_whether_it_was_whole() -> None:
    key = secrets.token_bytes(32)
    answer = bytes.fromhex("6a82") + secrets.token_bytes(40)
    for whole in (True, False):
        blob = keep(key, "link-1", 7, answer, whole=whole)
        assert answer not in blob
        assert kept(key, "link-1", 7, blob) == (answer, whole)


@pytest.mark.parametrize(
    ("whose", "link", "seq"),
    [("another", "link-1", 7), ("owner", "link-2", 7), ("owner", "link-1", 8)],
)
def test_another_key_link_or_sequence_number_reads_nothing(whose: str, link: str, seq: int) -> None:
    owner = secrets.token_bytes(32)
    blob = keep(owner, "link-1", 7, b"\x90\x00", whole=True)
    key = owner if whose == "owner" else secrets.token_bytes(32)
    with pytest.raises(SessionInvalid):
        kept(key, link, seq, blob)
