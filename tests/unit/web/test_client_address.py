"""Who is calling: X-Forwarded-For is believed only from a trusted proxy, and only as far as
our own proxies vouch for it (the rightmost hop that is not one of them)."""

from __future__ import annotations

import pytest

from cardvault.web.client_address import scope_client_address

PROXIES = ["10.9.0.0/24", "2001:db8:9::/48"]


def scope(peer: str | None, *forwarded: str) -> dict[str, object]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    headers.append((b"host", b"cardvault.example"))
    return {"type": "http", "client": (peer, 443) if peer else None, "headers": headers}


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    assert scope_client_address(scope("198.51.100.7", "10.1.1.1"), []) == "198.51.100.7"


def test_a_spoofed_header_from_an_untrusted_peer_is_ignored() -> None:
    got = scope_client_address(scope("198.51.100.7", "10.1.1.1, 10.9.0.1"), PROXIES)
    assert got == "198.51.100.7"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() -> None:
    # the client wrote "10.1.1.1" itself; our proxy appended the address it saw
    got = scope_client_address(scope("10.9.0.5", "10.1.1.1, 198.51.100.7"), PROXIES)
    assert got == "198.51.100.7"


def test_hops_of_a_chain_of_trusted_proxies_are_skipped() -> None:
    forwarded = ("203.0.113.9, 198.51.100.7", "10.9.0.1")  # two headers, in order
    assert scope_client_address(scope("10.9.0.5", *forwarded), PROXIES) == "198.51.100.7"


def test_when_every_hop_is_trusted_the_furthest_is_the_client() -> None:
    assert scope_client_address(scope("10.9.0.5", "10.9.0.77, 10.9.0.1"), PROXIES) == "10.9.0.77"


def test_a_proxy_without_the_header_is_itself_the_client() -> None:
    assert scope_client_address(scope("10.9.0.5"), PROXIES) == "10.9.0.5"


@pytest.mark.parametrize("hop", ["unknown", "198.51.100.7:4431", "[2001:db8::1]", "fe80::1%eth0"])
def test_an_unreadable_client_hop_leaves_the_address_unknown(hop: str) -> None:
    assert scope_client_address(scope("10.9.0.5", f"203.0.113.9, {hop}"), PROXIES) is None


def test_addresses_are_canonical_and_mapped_ipv4_is_ipv4() -> None:
    assert scope_client_address(scope("::ffff:198.51.100.7"), []) == "198.51.100.7"
    assert scope_client_address(scope("2001:DB8::0001"), []) == "2001:db8::1"
    assert scope_client_address(scope("::ffff:10.9.0.5", "2001:db8::7"), PROXIES) == "2001:db8::7"


def test_no_peer_or_a_peer_that_is_not_an_address_is_unknown() -> None:
    assert scope_client_address(scope(None, "198.51.100.7"), PROXIES) is None
    assert scope_client_address(scope("testclient"), []) is None
