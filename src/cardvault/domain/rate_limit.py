"""Rate limits on anonymous endpoints: the vocabulary and the pure decisions (issue 14).

A *bucket* is a family of endpoints that share a budget (every step of signing in, the
forgotten-passcode form, …). Each request costs one unit in its bucket, counted per source
address and, where the request names one, per identifier (the email or AD account signed in
with, the email a reset is asked for, the pairing code). A count lives in a **fixed window**
that opens with the first request of a key and lasts the rate's period; past the rate the
answer is 429 until the window closes, which is also the Retry-After.

A fixed window lets a client that knows when its window opened send up to twice the rate
across the boundary. That is accepted: the limits are there to stop floods and slow
guessing, and the atomic counters of the passcode and second factor still bound guessing
exactly.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from cardvault.errors import InvalidInput

_RATE = re.compile(r"(?P<requests>\d{1,6})/(?P<amount>\d{1,5})(?P<unit>[smh])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
#: IPv6 hosts get a /64 each, so one host's addresses share one count
IPV6_PREFIX = 64


class Bucket(StrEnum):
    """Families of anonymous endpoints; each has its own budget."""

    SIGNIN = "signin"  # sign-in starts and second-factor steps (API, vRA Manager, QR, keys)
    RESET = "reset"  # the forgotten-passcode form: sends email
    PORTAL = "portal"  # the reset and invitation pages behind an emailed link
    PAIRING = "pairing"  # pairing a phone with a pairing code
    POLL = "poll"  # waiting for a push or QR answer (long polls)
    STATUS = "status"  # certificate status for relying parties
    WEB_SESSION = "web_session"  # a new anonymous browser session (a database row)


class Scope(StrEnum):
    ADDRESS = "address"
    IDENTIFIER = "identifier"


@dataclass(frozen=True)
class Rate:
    """At most ``requests`` per window of ``seconds``."""

    requests: int
    seconds: int

    def __post_init__(self) -> None:
        if self.requests < 1 or self.seconds < 1:
            raise InvalidInput(
                "A rate allows at least 1 request per period of at least 1 second, like 30/1m."
            )

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """``"30/1m"`` (30 per minute; units s, m, h), or ``"off"`` (None: no limit)."""
        cleaned = text.strip().lower()
        if cleaned == "off":
            return None
        match = _RATE.fullmatch(cleaned)
        if match is None:
            raise InvalidInput(
                f"{text!r} is not a rate: write requests/period, like 30/1m, 10/15m or 100/1h, "
                "or off."
            )
        seconds = int(match["amount"]) * _UNIT_SECONDS[match["unit"]]
        return cls(requests=int(match["requests"]), seconds=seconds)

    def __str__(self) -> str:
        for unit, size in (("h", 3600), ("m", 60)):
            if self.seconds % size == 0:
                return f"{self.requests}/{self.seconds // size}{unit}"
        return f"{self.requests}/{self.seconds}s"


def retry_after(count: int, window_left_seconds: float, rate: Rate) -> int | None:
    """None while ``count`` (this request included) is within the rate; otherwise the whole
    seconds until the window closes (at least 1)."""
    if count <= rate.requests:
        return None
    return max(1, math.ceil(window_left_seconds))


def address_key(address: str | None) -> str:
    """What an address is counted as: IPv4 as it is, IPv6 by its /64, else ``unknown``."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


def identifier_key(kind: str, value: str) -> str:
    """A fixed-length stand-in for what was typed, the same however it was capitalised or
    spaced; counters then hold no email addresses."""
    text = " ".join(unicodedata.normalize("NFKC", value).casefold().split())
    return hashlib.sha256(f"{kind.strip().casefold()}\x00{text}".encode()).hexdigest()[:32]


def in_networks(
    address: str | None, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    """Whether ``address`` (an IP address as text; anything else is in no network) is in one
    of ``networks``."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in networks)


def humane_wait(seconds: int) -> str:
    """The wait in words, rounded up: 45 seconds, 1 minute, 15 minutes, 2 hours."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size:
            amount = math.ceil(seconds / size)
            return f"{amount} {unit}{'s' if amount != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
