"""Client networks (DESIGN §3.6): reading a list of CIDRs people typed, and asking whether an
address falls inside a set of networks.

Pure: strings in, canonical networks or precise refusals out. An organisation's list, the
operator's portal networks and the trusted proxies are all read here, so that "what is a
network" has one answer.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cardvault.errors import InvalidInput, error

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: more than this many networks for one organisation is a mistake, not a policy: a list that
#: long is checked by nobody (join adjacent networks into larger ones instead)
MAX_NETWORKS = 100
MAX_ENTRY_CHARS = 64
EXAMPLE = "10.20.0.0/16 or 2001:db8::/48"


@error
class InvalidNetworks(InvalidInput):
    """One or more entries of a network list are not networks we accept; ``problems`` holds
    one sentence per bad entry, in the order given."""

    code = "invalid_networks"
    message: str = dataclasses.field(default="", init=False)
    field: str | None = dataclasses.field(default="networks", init=False)
    problems: tuple[str, ...]

    def __post_init__(self) -> None:
        self.message = " ".join(self.problems)
        super().__post_init__()


@error
class EverywhereNeedsConfirmation(InvalidInput):
    """A /0 network opens everything: the shell asks the person to confirm (its own way)."""

    code = "everywhere_needs_confirmation"
    message: str = dataclasses.field(default="", init=False)
    field: str | None = dataclasses.field(default="networks", init=False)
    network: str

    def __post_init__(self) -> None:
        family = "IPv4" if ":" not in self.network else "IPv6"
        self.message = (
            f"{self.network} allows every {family} address on the internet; confirm that "
            "this is what you want."
        )
        super().__post_init__()


def client_ip(text: str | None) -> IPAddress | None:
    """An address as the allow-lists compare it: IPv4-mapped IPv6 becomes IPv4; anything
    that is not a plain address (a host name, a zone id, an empty string) is ``None``.

    On every request, so the common case skips ``ipaddress``'s parser: ``inet_pton`` reads
    the address, and an IPv4 address must read back exactly as written (no leading zeros,
    which some parsers take as octal)."""
    if not text or "%" in text:
        return None
    text = text.strip()
    try:
        ip4 = ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except OSError:
        pass
    else:
        return ip4 if str(ip4) == text else None
    try:
        ip6 = ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, text))
    except OSError:
        return None
    return ip6.ipv4_mapped or ip6


def _problem(entry: str) -> tuple[IPNetwork | None, str | None]:
    """The network an entry names, or the sentence that says why it is not one."""
    shown = repr(entry if len(entry) <= MAX_ENTRY_CHARS else entry[:MAX_ENTRY_CHARS] + "…")
    if len(entry) > MAX_ENTRY_CHARS or "%" in entry:
        return None, f"{shown} is not a network: write it like {EXAMPLE}."
    try:
        net = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None, f"{shown} is not a network: write it like {EXAMPLE}."
    if "/" in entry:
        try:
            ipaddress.ip_network(entry)  # strict: only host bits can fail it now
        except ValueError:
            address = entry.split("/", 1)[0]
            return None, (
                f"{shown} has host bits set: the network is {net} (or write {address} alone "
                "for that one address)."
            )
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
        return None, f"{shown} is an IPv4-mapped IPv6 network: write the IPv4 network instead."
    return net, None


def parse_networks(entries: Iterable[str], *, allow_everywhere: bool = False) -> tuple[str, ...]:
    """Canonical CIDRs, in the order given, duplicates dropped; a bare address is a /32
    (IPv4) or /128 (IPv6). Refuses every bad entry at once (``InvalidNetworks``), more than
    ``MAX_NETWORKS``, and a /0 unless ``allow_everywhere`` (``EverywhereNeedsConfirmation``)."""
    nets: list[IPNetwork] = []
    problems: list[str] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        net, problem = _problem(entry)
        if problem is not None:
            problems.append(problem)
        elif net is not None and net not in nets:
            nets.append(net)
    if problems:
        raise InvalidNetworks(problems=tuple(problems))
    if len(nets) > MAX_NETWORKS:
        raise InvalidNetworks(
            problems=(
                f"{len(nets)} networks are too many: at most {MAX_NETWORKS}. Join adjacent "
                "networks into larger ones.",
            )
        )
    everywhere = next((n for n in nets if n.prefixlen == 0), None)
    if everywhere is not None and not allow_everywhere:
        raise EverywhereNeedsConfirmation(network=str(everywhere))
    return tuple(str(n) for n in nets)


def changed_networks(
    current: Sequence[str],
    *,
    replace: Sequence[str] | None = None,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    allow_everywhere: bool = False,
) -> tuple[str, ...]:
    """An organisation's list after a change: ``replace`` it whole, or ``add`` and ``remove``
    entries. Only a /0 that the change brings in needs ``allow_everywhere`` (one already on
    the list was confirmed when it was added)."""
    if replace is not None and (add or remove):
        raise InvalidInput("Either give the whole list, or networks to add and remove; not both.")
    kept = tuple(current)
    if replace is None:
        gone = parse_networks(remove, allow_everywhere=True)
        missing = [n for n in gone if n not in kept]
        if missing:
            raise InvalidNetworks(
                problems=tuple(f"{n} is not on the list, so it cannot be removed." for n in missing)
            )
        kept = tuple(n for n in kept if n not in gone)
    new = parse_networks([*(replace if replace is not None else kept), *add], allow_everywhere=True)
    opened = next((n for n in new if n.endswith("/0") and n not in current), None)
    if opened is not None and not allow_everywhere:
        raise EverywhereNeedsConfirmation(network=opened)
    return new


def split_entries(text: str) -> list[str]:
    """The entries of a list typed into a text box: one per line, or separated by commas
    or spaces."""
    return text.replace(",", " ").split()


@dataclass(frozen=True)
class AllowList:
    """A set of networks, asked "is this address inside?" on every request: one set lookup
    per distinct prefix length, however many networks there are."""

    _v4: dict[int, frozenset[int]] = field(default_factory=dict)
    _v6: dict[int, frozenset[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, networks: Iterable[str | IPNetwork]) -> AllowList:
        """Networks already checked (stored, or from validated settings); an entry that is
        not a network is left out, so a damaged list admits less, never more."""
        v4: dict[int, set[int]] = {}
        v6: dict[int, set[int]] = {}
        for item in networks:
            try:
                net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                continue
            table = v4 if isinstance(net, ipaddress.IPv4Network) else v6
            table.setdefault(net.prefixlen, set()).add(int(net.network_address))
        return cls(
            {p: frozenset(s) for p, s in v4.items()}, {p: frozenset(s) for p, s in v6.items()}
        )

    def __contains__(self, address: object) -> bool:
        if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            ip: IPAddress | None = address
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                ip = address.ipv4_mapped
        else:
            ip = client_ip(address) if isinstance(address, str) else None
        if ip is None:
            return False
        bits, table = (32, self._v4) if ip.version == 4 else (128, self._v6)
        value = int(ip)
        return any((value >> (bits - p)) << (bits - p) in starts for p, starts in table.items())

    def __bool__(self) -> bool:
        return bool(self._v4 or self._v6)

    def __or__(self, other: AllowList) -> AllowList:
        def merged(
            a: dict[int, frozenset[int]], b: dict[int, frozenset[int]]
        ) -> dict[int, frozenset[int]]:
            return {p: a.get(p, frozenset()) | b.get(p, frozenset()) for p in {*a, *b}}

        return AllowList(merged(self._v4, other._v4), merged(self._v6, other._v6))
