"""Client networks as people type them, and the allow-list every request is checked against."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardvault.domain.networks import (
    MAX_NETWORKS,
    AllowList,
    EverywhereNeedsConfirmation,
    InvalidNetworks,
    changed_networks,
    client_ip,
    parse_networks,
    split_entries,
)


def test_networks_are_canonical_in_order_without_duplicates() -> None:
    got = parse_networks([" 10.20.0.0/16 ", "2001:DB8::/48", "10.20.0.0/16", "192.0.2.7", "::1"])
    assert got == ("10.20.0.0/16", "2001:db8::/48", "192.0.2.7/32", "::1/128")


def test_host_bits_are_refused_naming_the_network_meant() -> None:
    with pytest.raises(InvalidNetworks) as caught:
        parse_networks(["10.20.3.4/16"])
    assert caught.value.message == (
        "'10.20.3.4/16' has host bits set: the network is 10.20.0.0/16 (or write 10.20.3.4 "
        "alone for that one address)."
    )


def test_every_bad_entry_is_named_at_once() -> None:
    with pytest.raises(InvalidNetworks) as caught:
        parse_networks(["10.0.0.0/8", "ten.0.0.0/8", "10.0.0.0/33", "fe80::%eth0/64", "1.2.3.0/24"])
    assert caught.value.problems == (
        "'ten.0.0.0/8' is not a network: write it like 10.20.0.0/16 or 2001:db8::/48.",
        "'10.0.0.0/33' is not a network: write it like 10.20.0.0/16 or 2001:db8::/48.",
        "'fe80::%eth0/64' is not a network: write it like 10.20.0.0/16 or 2001:db8::/48.",
    )
    assert caught.value.field == "networks"


def test_an_ipv4_mapped_network_is_refused() -> None:
    with pytest.raises(InvalidNetworks, match="IPv4-mapped"):
        parse_networks(["::ffff:10.0.0.0/104"])


def test_a_very_long_entry_is_refused_shortened() -> None:
    with pytest.raises(InvalidNetworks) as caught:
        parse_networks(["1" * 5000])
    assert len(caught.value.message) < 200


def test_too_many_networks_are_refused() -> None:
    many = [f"10.{i // 256}.{i % 256}.0/24" for i in range(MAX_NETWORKS + 1)]
    assert len(parse_networks(many[:MAX_NETWORKS])) == MAX_NETWORKS
    with pytest.raises(InvalidNetworks, match=f"101 networks are too many: at most {MAX_NETWORKS}"):
        parse_networks(many)


@pytest.mark.parametrize("everywhere", ["0.0.0.0/0", "::/0"])
def test_the_whole_internet_needs_a_confirmation(everywhere: str) -> None:
    with pytest.raises(EverywhereNeedsConfirmation, match="allows every IPv"):
        parse_networks(["10.0.0.0/8", everywhere])
    assert parse_networks([everywhere], allow_everywhere=True) == (everywhere,)


def test_changes_add_remove_and_replace() -> None:
    now = ("10.0.0.0/8", "192.0.2.0/24")
    assert changed_networks(now, add=["198.51.100.0/24", "10.0.0.0/8"]) == (*now, "198.51.100.0/24")
    assert changed_networks(now, remove=["192.0.2.0/24"]) == ("10.0.0.0/8",)
    assert changed_networks(now, replace=["203.0.113.0/24"]) == ("203.0.113.0/24",)
    assert changed_networks(now, replace=[]) == ()
    with pytest.raises(InvalidNetworks, match=r"203\.0\.113\.0/24 is not on the list"):
        changed_networks(now, remove=["203.0.113.0/24"])
    with pytest.raises(InvalidNetworks, match="host bits"):
        changed_networks(now, remove=["10.1.0.0/8"])


def test_only_a_newly_opened_internet_needs_confirming() -> None:
    with pytest.raises(EverywhereNeedsConfirmation):
        changed_networks(("10.0.0.0/8",), add=["0.0.0.0/0"])
    assert changed_networks(("0.0.0.0/0",), add=["10.0.0.0/8"]) == ("0.0.0.0/0", "10.0.0.0/8")


def test_a_text_box_may_use_lines_commas_or_spaces() -> None:
    assert split_entries("10.0.0.0/8\r\n 192.0.2.0/24,198.51.100.1\n\n") == [
        "10.0.0.0/8",
        "192.0.2.0/24",
        "198.51.100.1",
    ]


def test_client_addresses_are_compared_as_ipv4_when_mapped() -> None:
    assert str(client_ip("::ffff:192.0.2.1")) == "192.0.2.1"
    assert client_ip("testclient") is None
    assert client_ip("010.1.1.1") is None  # octal to some parsers, decimal to others
    assert client_ip(" 192.0.2.1 ") == client_ip("192.0.2.1")
    assert client_ip("") is None
    assert client_ip(None) is None
    allow = AllowList.of(["192.0.2.0/24"])
    assert "::ffff:192.0.2.9" in allow
    assert "192.0.3.1" not in allow
    assert None not in allow
    assert "not an address" not in allow


def test_an_empty_list_admits_nobody_and_lists_combine() -> None:
    empty = AllowList.of([])
    assert not empty
    assert "127.0.0.1" not in empty
    both = AllowList.of(["10.0.0.0/8"]) | AllowList.of(["2001:db8::/32", "0.0.0.0/0"])
    assert "192.0.2.1" in both
    assert "2001:db8::5" in both
    assert "2001:db9::5" not in both


def test_a_damaged_stored_entry_admits_nothing_more() -> None:
    assert "10.1.2.3" not in AllowList.of(["garbage", "192.0.2.0/24"])


v4_nets = st.builds(
    lambda a, p: str(ipaddress.ip_network(f"{ipaddress.IPv4Address(a)}/{p}", strict=False)),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
v6_nets = st.builds(
    lambda a, p: str(ipaddress.ip_network(f"{ipaddress.IPv6Address(a)}/{p}", strict=False)),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
)
addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda a: str(ipaddress.IPv4Address(a))),
    st.integers(0, 2**128 - 1).map(lambda a: str(ipaddress.IPv6Address(a))),
)


@given(st.lists(st.one_of(v4_nets, v6_nets), max_size=12), st.lists(addresses, max_size=12))
def test_the_allow_list_agrees_with_checking_each_network(
    nets: list[str], probes: list[str]
) -> None:
    allow = AllowList.of(nets)
    for probe in probes + [n.split("/")[0] for n in nets]:
        ip = client_ip(probe)
        naive = any(
            ip in ipaddress.ip_network(n)
            for n in nets
            if ip is not None and ipaddress.ip_network(n).version == ip.version
        )
        assert (probe in allow) == naive, (probe, nets)
