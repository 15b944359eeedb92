"""The part of a card's state that belongs to one reader connection, not to the card.

A physical card sits in one reader; a virtual card can be inserted in several at once (two
PCs, two card sessions). What a VERIFY proved, a response waiting for GET RESPONSE, a command
chain or a management-key challenge must stay with the connection that produced them -- a
PIN verified on one PC must not let another PC sign (ISO 7816-4 §5.1: security status is per
logical channel). Counters, keys and data objects are the card's and are shared.

A service therefore stores two things: the card part (``PivState`` with no link state,
which ``dump_state`` writes) once per card, and a :class:`LinkState` per connection, and
joins them for each APDU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from cardvault.card.piv.state import (
    MAX_CHAIN_BYTES,
    ManagementChallenge,
    PendingChain,
    PivState,
    SecurityStatus,
    StateMalformed,
    _bool,
    _chain_from,
    _challenge_from,
    _plain,
)

__all__ = ["LinkState", "dump_link_state", "join", "load_link_state", "split"]


@dataclass(frozen=True, kw_only=True)
class LinkState:
    """Security status and work in flight of one connection; empty after power-up."""

    security: SecurityStatus = field(default_factory=SecurityStatus)
    pending_response: bytes = b""
    pending_chain: PendingChain | None = None
    challenge: ManagementChallenge | None = None

    def __post_init__(self) -> None:
        if len(self.pending_response) > MAX_CHAIN_BYTES:
            raise StateMalformed("pending response too long")


def split(state: PivState) -> tuple[PivState, LinkState]:
    """The card part (as after power-up) and the link part of a state."""
    link = LinkState(
        security=state.security,
        pending_response=state.pending_response,
        pending_chain=state.pending_chain,
        challenge=state.challenge,
    )
    return state.powered_up(), link


def join(card: PivState, link: LinkState) -> PivState:
    """The whole state one connection sees: the card's part with this link's part."""
    return replace(
        card,
        security=link.security,
        pending_response=link.pending_response,
        pending_chain=link.pending_chain,
        challenge=link.challenge,
    )


def dump_link_state(link: LinkState) -> bytes:
    return json.dumps(_plain(link), sort_keys=True, separators=(",", ":")).encode()


def load_link_state(data: bytes) -> LinkState:
    """The inverse of :func:`dump_link_state`; anything else raises StateMalformed."""
    try:
        raw: dict[str, Any] = json.loads(data)
        return LinkState(
            security=SecurityStatus(**{k: _bool(v) for k, v in raw["security"].items()}),
            pending_response=bytes.fromhex(raw["pending_response"]),
            pending_chain=_chain_from(raw["pending_chain"]),
            challenge=_challenge_from(raw["challenge"]),
        )
    except StateMalformed:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise StateMalformed("the stored link state could not be read") from err
