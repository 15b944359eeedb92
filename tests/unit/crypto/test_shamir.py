from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardvault.crypto import shamir
from cardvault.crypto.shamir import (
    ShareDuplicate,
    ShareMalformed,
    ShareMismatch,
    ShareParameters,
    ShareTypo,
    TooFewShares,
    combine,
    split,
)
from cardvault.errors import InvalidInput

SECRET = bytes(range(32))


def test_gf_mul_matches_aes_field_examples() -> None:
    # FIPS-197 §4.2: {57}·{83} = {c1}, {57}·{13} = {fe}
    assert shamir._gf_mul(0x57, 0x83) == 0xC1
    assert shamir._gf_mul(0x57, 0x13) == 0xFE


def test_gf_inverse_of_every_nonzero_element() -> None:
    for a in range(1, 256):
        assert shamir._gf_mul(a, shamir._gf_inv(a)) == 1


def test_share_text_carries_version_key_id_threshold_and_index() -> None:
    shares = split(SECRET, shares=5, threshold=3, key_id="mk-v1")
    assert len(shares) == 5
    for index, text in enumerate(shares, start=1):
        version, key_id, threshold, idx, _body = text.split(":")
        assert (version, key_id, threshold, idx) == ("cvs1", "mk-v1", "3", str(index))


def test_combine_returns_secret_and_key_id() -> None:
    shares = split(SECRET, shares=3, threshold=2, key_id="mk-v1")
    assert combine(shares[1:]) == (SECRET, "mk-v1")


@settings(max_examples=40, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=48),
    n=st.integers(2, 8),
    data=st.data(),
)
def test_any_k_of_n_shares_recover_the_secret_in_any_order(
    secret: bytes, n: int, data: st.DataObject
) -> None:
    k = data.draw(st.integers(2, n))
    shares = split(secret, shares=n, threshold=k, key_id="k")
    chosen = data.draw(st.permutations(shares)).copy()[: data.draw(st.integers(k, n))]
    assert combine(chosen) == (secret, "k")


@settings(max_examples=40, deadline=None)
@given(secret=st.binary(min_size=8, max_size=32), n=st.integers(2, 8), data=st.data())
def test_k_minus_one_shares_do_not_reveal_the_secret(
    secret: bytes, n: int, data: st.DataObject
) -> None:
    k = data.draw(st.integers(2, n))
    shares = split(secret, shares=n, threshold=k, key_id="k")
    chosen = data.draw(st.permutations(shares))[: k - 1]
    with pytest.raises(TooFewShares):
        combine(chosen)
    # Interpolating the K-1 points anyway gives some other value (each byte is uniform).
    points = [(s.index, s.data) for s in (shamir._decode(t, 1) for t in chosen)]
    assert shamir._interpolate(points) != secret


def test_each_share_alone_is_independent_of_the_secret() -> None:
    """With K=2 the share bytes are secret ⊕ a·x for a random a: over many splits, uniform."""
    seen = {
        shamir._decode(split(b"\x00", shares=2, threshold=2, key_id="k")[0], 1).data
        for _ in range(600)
    }
    assert len(seen) > 200


def test_too_few_shares_message_counts_them() -> None:
    shares = split(SECRET, shares=5, threshold=3, key_id="k")
    with pytest.raises(TooFewShares, match=r"^2 shares given, 3 needed$"):
        combine(shares[:2])
    with pytest.raises(TooFewShares):
        combine([])


def test_duplicate_index_is_refused() -> None:
    shares = split(SECRET, shares=5, threshold=3, key_id="k")
    with pytest.raises(ShareDuplicate, match="index 2 was given twice"):
        combine([shares[1], shares[0], shares[1]])


def test_shares_of_different_keys_are_refused() -> None:
    a = split(SECRET, shares=3, threshold=2, key_id="mk-v1")
    b = split(SECRET, shares=3, threshold=2, key_id="mk-v2")
    with pytest.raises(ShareMismatch, match="these shares come from different keys"):
        combine([a[0], b[1]])


def test_shares_of_two_splits_of_the_same_key_are_refused() -> None:
    a = split(SECRET, shares=3, threshold=2, key_id="mk")
    b = split(SECRET, shares=3, threshold=2, key_id="mk")
    with pytest.raises(ShareMismatch, match="different splits"):
        combine([a[0], b[1]])


def test_an_extra_share_that_does_not_fit_is_reported() -> None:
    shares = split(SECRET, shares=4, threshold=2, key_id="mk")
    forged = shamir._encode(
        shamir._Share(
            key_id="mk",
            threshold=2,
            index=4,
            split_id=shamir._decode(shares[0], 1).split_id,
            data=bytes(32),
        )
    )
    with pytest.raises(ShareMismatch, match="index 4 does not fit"):
        combine([shares[0], shares[1], forged])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_typo_anywhere_in_the_body_is_caught_and_located(data: st.DataObject) -> None:
    # The shares are random on every call, so what is drawn must not depend on them
    # (hypothesis replays the draws against new shares): draw indexes, then map them.
    shares = split(SECRET, shares=3, threshold=2, key_id="mk")
    body_start = shares[1].rindex(":") + 1
    places = [i for i in range(body_start, len(shares[1])) if shares[1][i] != "-"]
    position = places[data.draw(st.integers(0, 10**6)) % len(places)]
    others = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" if c != shares[1][position]]
    replacement = others[data.draw(st.integers(0, len(others) - 1))]
    typo = shares[1][:position] + replacement + shares[1][position + 1 :]
    with pytest.raises(ShareTypo, match=r"^share 2 has a typo$"):
        combine([shares[0], typo])


def test_a_typo_in_the_header_is_caught() -> None:
    shares = split(SECRET, shares=3, threshold=2, key_id="mk")
    with pytest.raises(ShareTypo, match="share 1 has a typo"):
        combine([shares[0].replace(":2:1:", ":2:3:"), shares[1]])
    with pytest.raises(ShareTypo):
        combine([shares[0].replace("cvs1:mk:", "cvs1:mj:"), shares[1]])


def test_shares_survive_case_spacing_and_dash_changes() -> None:
    shares = split(SECRET, shares=3, threshold=2, key_id="mk")
    sloppy = shares[0].lower().replace("cvs1:mk", "CVS1:mk").replace("-", " ")
    assert combine([f"  {sloppy}\n", shares[2]]) == (SECRET, "mk")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "cvs1:mk:2:1",
        "cvs2:mk:2:1:AAAA",
        "cvs1:mk:x:1:AAAA-AAAA-AAAA",
        "cvs1:m k:2:1:AAAA",
    ],
)
def test_malformed_share_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        combine([text, text])


def test_share_with_bad_characters_is_a_typo() -> None:
    shares = split(SECRET, shares=3, threshold=2, key_id="mk")
    with pytest.raises(ShareTypo):
        combine([shares[0][:-1] + "1", shares[1]])


def test_non_list_input_is_refused() -> None:
    with pytest.raises(ShareMalformed):
        combine(split(SECRET, shares=3, threshold=2, key_id="mk")[0])


@pytest.mark.parametrize(("n", "k"), [(3, 1), (2, 3), (256, 2), (1, 1), (5, 0)])
def test_threshold_and_share_count_out_of_range_are_refused(n: int, k: int) -> None:
    with pytest.raises(ShareParameters, match="threshold"):
        split(SECRET, shares=n, threshold=k, key_id="mk")


def test_bad_secret_or_key_id_is_refused() -> None:
    with pytest.raises(ShareParameters):
        split(b"", shares=3, threshold=2, key_id="mk")
    with pytest.raises(ShareParameters):
        split(SECRET, shares=3, threshold=2, key_id="has:colon")


def test_255_shares_work_at_the_limit() -> None:
    shares = split(b"\x42\x99", shares=255, threshold=3, key_id="mk")
    picked = random.Random(7).sample(shares, 3)
    assert combine(picked) == (b"\x42\x99", "mk")
